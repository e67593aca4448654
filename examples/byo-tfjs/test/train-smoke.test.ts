import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(__dirname, '..');
const cli = createRequire(join(root, 'package.json'))
  .resolve('@zeroflow/cli/package.json')
  .replace(/package\.json$/, 'dist/bin.cjs');

interface RankOut {
  losses: number[];
  valLoss: number;
  memory: Record<string, number>;
  weights: Record<string, number[]>;
}

describe('bring-your-own tfjs model (smoke)', () => {
  it('trains a plain tfjs MLP on 2 ranks with ZeRO stage 2 through the launcher', () => {
    const out = mkdtempSync(join(tmpdir(), 'zf-byo-'));
    const steps = 12;
    const r = spawnSync(
      process.execPath,
      [cli, 'run', '--nproc-per-node', '2', 'train.ts', '--steps', String(steps), '--out', out],
      { cwd: root, encoding: 'utf8', env: { ...process.env, ZEROFLOW_COMM: 'tcp' }, timeout: 180_000 },
    );
    const log = r.stdout + r.stderr;
    expect(r.status, log).toBe(0);
    const line = log.split('\n').find((l) => l.includes('RESULT '));
    expect(line, log).toBeDefined();
    const result = JSON.parse(line!.slice(line!.indexOf('RESULT ') + 7)) as {
      steps: number;
      stage: number;
      valLossBefore: number;
      valLoss: number;
    };
    expect(result.steps).toBe(steps);
    expect(result.stage).toBe(2);
    expect(result.valLoss).toBeLessThan(result.valLossBefore * 0.8);

    const ranks = [0, 1].map((k) => JSON.parse(readFileSync(join(out, `rank${k}.json`), 'utf8')) as RankOut);
    for (const rank of ranks) {
      expect(rank.losses).toHaveLength(steps);
      const head = (rank.losses[0] + rank.losses[1]) / 2;
      const tail = (rank.losses[steps - 2] + rank.losses[steps - 1]) / 2;
      expect(tail).toBeLessThan(head);
    }
    // the ranks trained one model: after every step's all-gather their weights are identical
    expect(ranks[1].weights).toEqual(ranks[0].weights);
    // and ZeRO partitioned the Adam state: each rank holds about half of the 8 bytes per parameter
    const numParams = Object.values(ranks[0].weights).reduce((a, w) => a + w.length, 0);
    for (const rank of ranks) {
      expect(rank.memory.optimizer).toBeGreaterThan(0);
      expect(rank.memory.optimizer).toBeLessThan(8 * numParams * 0.6);
    }
  }, 200_000);
});
