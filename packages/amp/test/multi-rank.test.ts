import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runRanks } from '@zeroflow/test-utils';
import { describe, expect, it } from 'vitest';

const fixture = fileURLToPath(new URL('./fixtures/amp-dp-rank.ts', import.meta.url));

interface RankResult {
  rank: number;
  steps: { loss: number; skipped: boolean; scale: number }[];
  skippedSteps: number;
  scaler: Record<string, number>;
  weights: number[][];
}

describe('fp16 across 2 data-parallel ranks', () => {
  it('an overflow on rank 1 only makes BOTH ranks skip the step and halve the scale', async () => {
    const out = mkdtempSync(join(tmpdir(), 'amp-dp-'));
    try {
      const exits = await runRanks(2, fixture, () => ['4', '2', out], { ZEROFLOW_COMM: 'tcp' });
      for (const e of exits) expect(e.code, `rank ${e.rank}:\n${e.output}`).toBe(0);
      const [r0, r1] = [0, 1].map((r) => JSON.parse(readFileSync(join(out, `rank${r}.json`), 'utf8')) as RankResult);
      expect(Number.isFinite(r0.steps[2].loss)).toBe(true); // rank 0's own loss was fine ...
      expect(r1.steps[2].loss).toBeNull(); // ... only rank 1's overflowed (inf: JSON writes null)
      for (const r of [r0, r1]) {
        expect(r.steps.map((s) => s.skipped)).toEqual([false, false, true, false]);
        expect(r.steps.map((s) => s.scale)).toEqual([65536, 65536, 32768, 32768]);
        expect(r.skippedSteps).toBe(1);
      }
      expect(r1.scaler).toEqual(r0.scaler);
      expect(r1.weights).toEqual(r0.weights); // the ranks never diverged
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
