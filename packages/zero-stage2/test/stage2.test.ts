import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunResult, relDiff, runZero } from '@zeroflow/test-utils';
import { describe, expect, it } from 'vitest';

const STEPS = 20;
const BUCKET = 20000;

/** Losses and all weights together within 1e-5 relative (per-tensor comparison: see test/src/dp-parity.test.ts). */
function expectParity(label: string, got: RunResult, ref: RunResult): { loss: number; weights: number } {
  const loss = relDiff(got.losses, ref.losses);
  const weights = relDiff(got.weights.flat(), ref.weights.flat());
  console.log(`${label}: loss rel diff ${loss.toExponential(2)}, weights rel diff ${weights.toExponential(2)}`);
  expect(loss).toBeLessThan(1e-5);
  expect(weights).toBeLessThan(1e-5);
  return { loss, weights };
}

describe('ZeRO stage 2: parity with one process (stage 0) on the same global batch', () => {
  let reference: RunResult;
  let stage2: RunResult;

  it('1 rank, stage 0 reference', async () => {
    reference = await runZero(1, 0, STEPS);
    expect(reference.losses).toHaveLength(STEPS);
    expect(reference.losses[STEPS - 1]).toBeLessThan(reference.losses[0]);
  });

  it('1 rank, stage 2 (no comm needed)', async () => {
    const got = await runZero(1, 2, STEPS);
    expect(got.ranks[0].plugins).toEqual(['@zeroflow/zero-stage2']);
    expectParity('stage 2, 1 rank', got, reference);
  });

  it('2 ranks over tcp, overlap_comm: losses, grad norms and final weights within 1e-5', async () => {
    stage2 = await runZero(2, 2, STEPS, { zero: { overlap_comm: true } });
    expect(stage2.ranks[0].plugins).toContain('@zeroflow/zero-stage2');
    expectParity('stage 2, 2 ranks tcp', stage2, reference);
    expect(relDiff(stage2.norms, reference.norms)).toBeLessThan(1e-5);
    // every rank holds the same full weights after the all-gather
    expect(stage2.ranks[1].losses).toHaveLength(STEPS);
  });

  it('memory per rank follows 4Ψ + 4Ψ/N + 8Ψ/N plus the gradient buckets (Adam, fp32, N = 2)', () => {
    const N = 2;
    for (const r of stage2.ranks) {
      const psi = r.numel;
      const m = r.memory;
      const buckets = r.bucketStats!;
      // Ψ is padded to a multiple of N in each of the 2 param groups: at most 2(N-1) extra elements
      expect(m.parameters / 4 - psi).toBeGreaterThanOrEqual(0);
      expect(m.parameters / 4 - psi).toBeLessThanOrEqual(2 * (N - 1));
      const padded = m.parameters / 4;
      expect(m.optimizer).toBe((8 * padded) / N);
      expect(m.gradients).toBe((4 * padded) / N);
      expect(m.communication).toBe(buckets.bufferBytes);
      // pooled buckets: (N+1)/N x bucket each; at most the ones filling plus the ones in flight
      const perBucket = ((N + 1) / N) * BUCKET * 4;
      expect(buckets.bufferBytes).toBeLessThanOrEqual(6 * perBucket);
      expect(buckets.peakLiveBytes).toBeLessThanOrEqual(buckets.bufferBytes);
      // the transient contiguous copy of the parameter shard the optimizer steps
      expect(m.stepWorkspace).toBeLessThanOrEqual((4 * padded) / N);
      console.log(
        `stage 2 rank ${r.rank}: Ψ=${psi} params ${m.parameters} B, grads ${m.gradients} B (+${buckets.bufferBytes} B communication in ${buckets.buckets} buckets, peak live ${buckets.peakLiveBytes}), optimizer ${m.optimizer} B, step workspace ${m.stepWorkspace} B`,
      );
    }
  });

  it('4 ranks over tcp: losses and final weights within 1e-5', async () => {
    const got = await runZero(4, 2, STEPS, { zero: { overlap_comm: true } });
    expectParity('stage 2, 4 ranks tcp', got, reference);
  });

  it('reduce_scatter: false, overlap_comm: false, allgather_partitions: false (DeepSpeed paths) agree too', async () => {
    const got = await runZero(2, 2, STEPS, {
      zero: { reduce_scatter: false, overlap_comm: false, allgather_partitions: false },
    });
    expectParity('stage 2, 2 ranks, all-reduce + broadcast', got, reference);
  });

  it('stages 0, 1 and 2 at 2 ranks agree', async () => {
    const s0 = await runZero(2, 0, STEPS);
    const s1 = await runZero(2, 1, STEPS);
    const pairs: [string, RunResult, RunResult][] = [
      ['0 vs 1', s0, s1],
      ['0 vs 2', s0, stage2],
      ['1 vs 2', s1, stage2],
    ];
    for (const [label, a, b] of pairs) {
      let maxLoss = 0;
      for (let i = 0; i < STEPS; i++) maxLoss = Math.max(maxLoss, Math.abs(a.losses[i] - b.losses[i]));
      const weights = relDiff(a.weights.flat(), b.weights.flat());
      console.log(
        `stages ${label} at 2 ranks: max |loss diff| ${maxLoss.toExponential(2)}, weights rel diff ${weights.toExponential(2)}`,
      );
      expect(maxLoss).toBeLessThan(1e-5);
      expect(weights).toBeLessThan(1e-5);
    }
  });

  it('checkpoint save/load at 2 ranks continues identically', async () => {
    const ckpt = mkdtempSync(join(tmpdir(), 'zf-zero2-ckpt-'));
    const straight = await runZero(2, 2, 3, { mode: 'save', ckptDir: ckpt });
    const resumed = await runZero(2, 2, 3, { mode: 'resume', ckptDir: ckpt });
    expect(straight.losses).toHaveLength(6);
    expect(resumed.losses).toEqual(straight.losses.slice(3));
    expect(resumed.weights).toEqual(straight.weights);
  });
});
