import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunResult, relDiff, runZero } from '@zeroflow/test-utils';
import { describe, expect, it } from 'vitest';

const STEPS = 20;

/** Losses and all weights together within 1e-5 relative (per-tensor comparison: see test/src/dp-parity.test.ts). */
function expectParity(label: string, got: RunResult, ref: RunResult): void {
  const loss = relDiff(got.losses, ref.losses);
  const weights = relDiff(got.weights.flat(), ref.weights.flat());
  console.log(`${label}: loss rel diff ${loss.toExponential(2)}, weights rel diff ${weights.toExponential(2)}`);
  expect(loss).toBeLessThan(1e-5);
  expect(weights).toBeLessThan(1e-5);
}

describe('ZeRO stage 1: parity with one process (stage 0) on the same global batch', () => {
  let reference: RunResult;
  let stage1: RunResult;

  it('1 rank, stage 0 reference', async () => {
    reference = await runZero(1, 0, STEPS);
    expect(reference.losses).toHaveLength(STEPS);
    expect(reference.losses[STEPS - 1]).toBeLessThan(reference.losses[0]);
  });

  it('1 rank, stage 1 (no comm needed)', async () => {
    const got = await runZero(1, 1, STEPS);
    expect(got.ranks[0].plugins).toEqual(['@zeroflow/zero-stage1']);
    expectParity('stage 1, 1 rank', got, reference);
  });

  it('2 ranks over tcp, chunked reduce-scatter and all-gather: losses, grad norms, weights within 1e-5', async () => {
    // 20000-element reduce buckets and 5000-element all-gather buckets: several chunks per group
    stage1 = await runZero(2, 1, STEPS, { zero: { allgather_bucket_size: 5000 } });
    expect(stage1.ranks[0].plugins).toContain('@zeroflow/zero-stage1');
    expectParity('stage 1, 2 ranks tcp', stage1, reference);
    expect(relDiff(stage1.norms, reference.norms)).toBeLessThan(1e-5);
  });

  it('memory per rank follows 4Ψ + 4Ψ + 8Ψ/N (Adam, fp32, N = 2) plus the staging buffers', () => {
    const N = 2;
    for (const r of stage1.ranks) {
      const m = r.memory;
      // Ψ is padded to a multiple of N in each of the 2 param groups: at most 2(N-1) extra elements
      const padded = m.parameters / 4;
      expect(padded - r.numel).toBeGreaterThanOrEqual(0);
      expect(padded - r.numel).toBeLessThanOrEqual(2 * (N - 1));
      expect(m.gradients).toBe(4 * padded);
      expect(m.optimizer).toBe((8 * padded) / N);
      // two staging buffers per direction, each one bucket (20000 reduce, 5000 all-gather elements)
      expect(m.communication).toBeLessThanOrEqual(2 * 4 * (20000 + 5000));
      console.log(
        `stage 1 rank ${r.rank}: Ψ=${r.numel} params ${m.parameters} B, grads ${m.gradients} B, optimizer ${m.optimizer} B, staging ${m.communication} B`,
      );
    }
  });

  it('reduce_scatter: false and allgather_partitions: false (all-reduce + broadcast) agree too', async () => {
    const got = await runZero(2, 1, STEPS, { zero: { reduce_scatter: false, allgather_partitions: false } });
    expectParity('stage 1, 2 ranks, all-reduce + broadcast', got, reference);
  });

  it('checkpoint save/load at 2 ranks continues identically', async () => {
    const ckpt = mkdtempSync(join(tmpdir(), 'zf-zero1-ckpt-'));
    const straight = await runZero(2, 1, 3, { mode: 'save', ckptDir: ckpt });
    const resumed = await runZero(2, 1, 3, { mode: 'resume', ckptDir: ckpt });
    expect(straight.losses).toHaveLength(6);
    expect(resumed.losses).toEqual(straight.losses.slice(3));
    expect(resumed.weights).toEqual(straight.weights);
  });
});
