// Without the native addon (ZEROFLOW_NO_NATIVE=1, or no compiler at build time) the backend reports itself
// unavailable with the reason, creating a group fails with a CommError, and the build still exits 0.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommError } from '@zeroflow/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createShmWorldGroup, plugin, shmBackend } from '../src/index.js';
import { FileStore } from './fixtures/file-store.js';
import { packageDir } from './helpers.js';

const buildScript = join(packageDir, '..', '..', 'native', 'scripts', 'build.mjs');

describe('shm backend without native code', () => {
  afterEach(() => {
    delete process.env.ZEROFLOW_NO_NATIVE;
  });

  it('is available when the addon is built, unavailable with a reason when disabled', async () => {
    expect(shmBackend.available()).toEqual({ ok: true });
    process.env.ZEROFLOW_NO_NATIVE = '1';
    const a = shmBackend.available();
    expect(a.ok).toBe(false);
    expect(a.reason).toContain('ZEROFLOW_NO_NATIVE=1');
    const store = new FileStore(mkdtempSync(join(tmpdir(), 'zf-shm-fallback-')));
    const init = { rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, store, timeoutMs: 1000, token: '' };
    await expect(createShmWorldGroup(init)).rejects.toThrow(CommError);
    await expect(createShmWorldGroup(init)).rejects.toThrow(/tcp backend/);
  });

  it('the native build exits 0 with one clear line when disabled or without a compiler', () => {
    const disabled = spawnSync(process.execPath, [buildScript], {
      env: { ...process.env, ZEROFLOW_NO_NATIVE: '1' },
      encoding: 'utf8',
    });
    expect(disabled.status).toBe(0);
    expect(disabled.stdout).toContain('not built (ZEROFLOW_NO_NATIVE=1)');
    const noCompiler = spawnSync(process.execPath, [buildScript, '--force'], {
      env: { ...process.env, CXX: '/nonexistent/c++' },
      encoding: 'utf8',
    });
    expect(noCompiler.status).toBe(0);
    expect(noCompiler.stdout).toContain('no C++ compiler');
    // Leave the build status as a normal build would.
    expect(spawnSync(process.execPath, [buildScript], { encoding: 'utf8' }).status).toBe(0);
  });

  it('declares the plugin metadata', () => {
    expect(plugin).toMatchObject({
      name: '@zeroflow/comm-shm',
      version: '0.1.0',
      coreVersion: '^0.1.0',
      provides: ['comm'],
    });
  });
});
