import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type RunResult, relDiff, runZero, runZeroRaw } from './zero3-run.js';

const STEPS = 20;
/** GPT tiny's biases of 64 and LayerNorms stay whole; its 192/256-element biases and all matrices are partitioned. */
const ZERO3 = { stage3_param_persistence_threshold: 100 };

/** Losses and all weights together within 1e-5 relative. */
function expectParity(label: string, got: RunResult, ref: RunResult): void {
  const loss = relDiff(got.losses, ref.losses);
  const weights = relDiff(got.weights.flat(), ref.weights.flat());
  console.log(`${label}: loss rel diff ${loss.toExponential(2)}, weights rel diff ${weights.toExponential(2)}`);
  expect(got.losses).toHaveLength(ref.losses.length);
  expect(loss).toBeLessThan(1e-5);
  expect(weights).toBeLessThan(1e-5);
}

describe('ZeRO stage 3: parity with one process (stage 0) on the same global batch', () => {
  let reference: RunResult;
  let stage3: RunResult;

  it('1 rank, stage 0 reference', async () => {
    reference = await runZero(1, 0, STEPS);
    expect(reference.losses).toHaveLength(STEPS);
    expect(reference.losses[STEPS - 1]).toBeLessThan(reference.losses[0]);
  });

  it('2 ranks over tcp: losses, grad norms and final weights within 1e-5; partitioned tensors are null', async () => {
    stage3 = await runZero(2, 3, STEPS, { zero: ZERO3 });
    expect(stage3.ranks[0].plugins).toContain('@zeroflow/zero-stage3');
    expectParity('stage 3, 2 ranks tcp', stage3, reference);
    expect(relDiff(stage3.norms, reference.norms)).toBeLessThan(1e-5);
    for (const r of stage3.ranks) {
      expect(r.stats!.partitioned).toBeGreaterThan(0);
      expect(r.stats!.persistent).toBeGreaterThan(0);
      expect(r.materializedBetweenSteps).toBe(0);
      expect(r.materializedAtEnd).toBe(0);
    }
  });

  it('memory per rank follows 16Ψ/N (fp32 Adam) plus persistent parameters and buffers (N = 2)', () => {
    const N = 2;
    for (const r of stage3.ranks) {
      const m = r.memory;
      const psi = r.numel;
      // every parameter is padded to a multiple of N: at most N-1 extra elements each
      const shard = r.sizes.reduce((a, s) => a + Math.ceil(s / N), 0);
      expect(shard).toBeLessThanOrEqual(psi / N + r.sizes.length);
      expect(m.parameters).toBe(4 * shard);
      expect(m.optimizer).toBe(8 * shard);
      expect(m.gradients).toBe(4 * shard);
      expect(m.communication).toBe(r.stats!.bufferBytes);
      const persistent = r.sizes
        .filter((s) => s <= ZERO3.stage3_param_persistence_threshold)
        .reduce((a, s) => a + s, 0);
      expect(m.persistentParameters).toBe(4 * persistent);
      // gathered weights at peak: one leaf (the largest is mlp.c_fc, 64x256 + 256), never the model
      expect(m.gatheredParametersPeak).toBeGreaterThan(0);
      expect(m.gatheredParametersPeak).toBeLessThanOrEqual(4 * (64 * 256 + 256));
      expect(m.gatheredParameters).toBe(0);
      const modelStates = m.parameters + m.optimizer + m.gradients;
      expect(modelStates).toBeLessThanOrEqual((16 * psi) / N + 16 * r.sizes.length);
      console.log(
        `stage 3 rank ${r.rank}: Ψ=${psi}, 16Ψ/N=${(16 * psi) / N} B, model states ${modelStates} B (params ${m.parameters}, grads ${m.gradients}, optimizer ${m.optimizer}), persistent ${m.persistentParameters} B, grad buckets ${r.stats!.bufferBytes} B in ${r.stats!.buckets}, gathered peak ${m.gatheredParametersPeak} B, gather staging ${m.gatherBuffers} B, ${r.stats!.gathers} gathers`,
      );
    }
  });

  it('construction-time partitioning (partitioned factory) trains identically at 2 ranks', async () => {
    const got = await runZero(2, 3, STEPS, { mode: 'initscope', zero: ZERO3 });
    const full = 4 * got.ranks[0].numel;
    for (const r of got.ranks) expect(r.fullBytesAtBuild).toBeLessThan(full / 10);
    expectParity('stage 3, 2 ranks, built partitioned', got, reference);
  });

  it('checkpoint save/load at 2 ranks continues identically', async () => {
    const ckpt = mkdtempSync(join(tmpdir(), 'zf-zero3-ckpt-'));
    const straight = await runZero(2, 3, 3, { mode: 'save', ckptDir: ckpt, zero: ZERO3 });
    const resumed = await runZero(2, 3, 3, { mode: 'resume', ckptDir: ckpt, zero: ZERO3 });
    expect(straight.losses).toHaveLength(6);
    expect(resumed.losses).toEqual(straight.losses.slice(3));
    expect(resumed.weights).toEqual(straight.weights);
  });

  it('different control flow on different ranks fails with a clear error, not a hang', async () => {
    const { exits } = await runZeroRaw(2, 3, 1, { mode: 'diverge', zero: ZERO3 });
    for (const e of exits) {
      expect(e.code, `rank ${e.rank} should fail:\n${e.output}`).not.toBe(0);
      expect(e.output).toMatch(/different paths|same control flow/);
    }
    console.log(exits[0].output.split('\n').find((l) => l.includes('ZeRO-3')));
  });

  it('4 ranks over tcp: losses and final weights within 1e-5', async () => {
    const got = await runZero(4, 3, STEPS, { zero: ZERO3 });
    expectParity('stage 3, 4 ranks tcp', got, reference);
  });
});

describe('ZeRO stage 3: limits and config', () => {
  it('stage3_max_live_parameters below one layer is refused with the fix', async () => {
    const { exits } = await runZeroRaw(1, 3, 1, { zero: { ...ZERO3, stage3_max_live_parameters: 1000 } });
    expect(exits[0].code).not.toBe(0);
    expect(exits[0].output).toMatch(/stage3_max_live_parameters = 1000: raise it/);
  });

  it('keys stage 3 does not implement are config errors that say so', async () => {
    const { exits } = await runZeroRaw(1, 3, 1, { zero: { reduce_scatter: false } });
    expect(exits[0].code).not.toBe(0);
    expect(exits[0].output).toMatch(/zero_optimization\.reduce_scatter.*not supported by @zeroflow\/zero-stage3/);
  });
});
