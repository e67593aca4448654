import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const cli = createRequire(__filename)
  .resolve('@zeroflow/cli/package.json')
  .replace(/package\.json$/, 'dist/bin.cjs');
const script = join(__dirname, 'fixtures', 'dp-train.ts');

describe('zeroflow run + the engine', () => {
  it('launches a 2-rank data-parallel job whose ranks agree, output prefixed by rank', () => {
    const dir = mkdtempSync(join(tmpdir(), 'zf-launch-'));
    const r = spawnSync(process.execPath, [cli, 'run', '--nproc-per-node', '2', script, '3', dir], {
      encoding: 'utf8',
      env: { ...process.env, ZEROFLOW_COMM: 'tcp', ZEROFLOW_LOG_LEVEL: 'info' },
      timeout: 120_000,
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).toMatch(/\[rank 1\]/);
    const out = JSON.parse(readFileSync(join(dir, 'rank0.json'), 'utf8')) as { losses: number[] };
    const out1 = JSON.parse(readFileSync(join(dir, 'rank1.json'), 'utf8')) as { losses: number[] };
    expect(out.losses).toHaveLength(3);
    expect(out1.losses).toHaveLength(3);
  });
});
