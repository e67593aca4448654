import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { relDiff, runRanks } from '@zeroflow/test-utils';
import { describe, expect, it } from 'vitest';

const script = join(__dirname, 'fixtures', 'dp-train.ts');
const STEPS = 20;
type Out = { rank: number; losses: number[]; weights: number[][] | null };

async function train(n: number, comm: string): Promise<{ losses: number[]; weights: number[][] }> {
  const dir = mkdtempSync(join(tmpdir(), `zf-dp${n}-`));
  const exits = await runRanks(n, script, () => [String(STEPS), dir], { ZEROFLOW_COMM: comm });
  for (const e of exits) expect(e.code, `rank ${e.rank} failed:\n${e.output}`).toBe(0);
  const outs = exits.map((e) => JSON.parse(readFileSync(join(dir, `rank${e.rank}.json`), 'utf8')) as Out);
  // The global loss of a step is the mean of the ranks' losses (equal micro-batch sizes).
  const losses = outs[0].losses.map((_, i) => outs.reduce((a, o) => a + o.losses[i], 0) / n);
  return { losses, weights: outs[0].weights! };
}

describe('data parallel (stage 0) parity with one process on the same global batch', () => {
  let reference: { losses: number[]; weights: number[][] };

  it('1 rank reference', async () => {
    reference = await train(1, 'tcp');
    expect(reference.losses).toHaveLength(STEPS);
    expect(reference.losses[STEPS - 1]).toBeLessThan(reference.losses[0]);
  });

  for (const [n, comm] of [
    [2, 'tcp'],
    [2, 'shm'],
    [4, 'tcp'],
  ] as const) {
    it(`${n} ranks over ${comm}: losses and final weights within 1e-5 relative`, async () => {
      const got = await train(n, comm);
      expect(relDiff(got.losses, reference.losses)).toBeLessThan(1e-5);
      // Over all weights together: a tensor whose true gradient is zero (the attention key bias: softmax
      // ignores a constant added to every score) moves by Adam-normalized rounding noise, so its own
      // relative difference is ~1e-4 whatever the summation order; every other tensor agrees to ~1e-6.
      const all = relDiff(got.weights.flat(), reference.weights.flat());
      console.log(
        `dp ${n} ${comm}: loss rel diff ${relDiff(got.losses, reference.losses).toExponential(2)}, weights rel diff ${all.toExponential(2)}`,
      );
      expect(all).toBeLessThan(1e-5);
    });
  }
});
