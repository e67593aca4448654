// `zeroflow report`, run as a user would (the built CLI), compared with what this machine really has.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const packageDir = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(packageDir, 'dist', 'bin.cjs');

function zeroflow(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [bin, ...args], {
    cwd: packageDir,
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, ...env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const cpuFlags = new Set((/^flags\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '').split(' '));
const shmBuilt = Boolean(
  (createRequire(import.meta.url)('@zeroflow/native') as { loadShmAddon(): unknown }).loadShmAddon(),
);

beforeAll(() => {
  if (!existsSync(bin)) execFileSync('npx', ['tsup'], { cwd: packageDir, stdio: 'ignore' });
});

describe('zeroflow report', () => {
  it('prints comm backends, CPU features and the ZEROFLOW_* variables (token hidden)', () => {
    const r = zeroflow(['report'], { ZEROFLOW_COMM_TIMEOUT_MS: '1234', ZEROFLOW_JOB_TOKEN: 'secret-token' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`node          ${process.version}`);
    expect(r.stdout).toMatch(new RegExp(`avx2 ${cpuFlags.has('avx2') ? 'yes' : 'no'}`));
    expect(r.stdout).toMatch(new RegExp(`amx_bf16 ${cpuFlags.has('amx_bf16') ? 'yes' : 'no'}`));
    expect(r.stdout).toMatch(/^ {2}tcp +available/m);
    expect(r.stdout).toMatch(shmBuilt ? /^ {2}shm +available/m : /^ {2}shm +NOT available: /m);
    expect(r.stdout).toMatch(/^ {2}gloo +NOT available: @zeroflow\/comm-gloo not installed/m);
    expect(r.stdout).toContain('ZEROFLOW_COMM_TIMEOUT_MS=1234');
    expect(r.stdout).toContain('ZEROFLOW_JOB_TOKEN=<set, hidden>');
    expect(r.stdout).not.toContain('secret-token');
  });

  it('--json parses and agrees with the machine', () => {
    const r = zeroflow(['report', '--json']);
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.node.version).toBe(process.version);
    for (const f of ['avx2', 'avx512f', 'avx512_bf16', 'amx_bf16', 'f16c']) {
      expect(report.cpu.features[f]).toBe(cpuFlags.has(f));
    }
    expect(report.tfjs).toMatchObject({ version: '4.22.0', backend: 'cpu' });
    const comm = Object.fromEntries(report.comm.map((c: { name: string }) => [c.name, c]));
    expect(comm.tcp.available).toBe(true);
    expect(comm.shm.available).toBe(shmBuilt);
    const names = report.packages.map((p: { name: string }) => p.name);
    expect(names).toEqual(expect.arrayContaining(['@zeroflow/cli', '@zeroflow/core', '@zeroflow/comm-tcp']));
    expect(report.native.find((n: { name: string }) => n.name === 'shm').available).toBe(shmBuilt);
  });

  it('says why shm is unavailable when native code is disabled', () => {
    const report = JSON.parse(zeroflow(['report', '--json'], { ZEROFLOW_NO_NATIVE: '1' }).stdout);
    const shm = report.comm.find((c: { name: string }) => c.name === 'shm');
    expect(shm.available).toBe(false);
    expect(shm.reason).toContain('ZEROFLOW_NO_NATIVE=1');
    expect(report.native.find((n: { name: string }) => n.name === 'shm').reason).toContain('ZEROFLOW_NO_NATIVE=1');
  });
});
