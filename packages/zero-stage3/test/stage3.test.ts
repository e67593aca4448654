import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { relDiff, runRanks } from '@zeroflow/test-utils';
import { describe, expect, it } from 'vitest';
import { type RunResult, runZero, runZeroRaw } from './zero3-run.js';

const STEPS = 20;
/** GPT tiny's biases of 64 and LayerNorms stay whole; its 192/256-element biases and all matrices are partitioned. */
const PREFETCH = 20_000;
// Reuse 0: weights are freed after every use (the memory bound below); reuse is tested on its own.
const ZERO3 = {
  stage3_param_persistence_threshold: 100,
  stage3_prefetch_bucket_size: PREFETCH,
  stage3_max_reuse_distance: 0,
};
/** The largest leaf layer of GPT tiny: mlp.c_fc, 64x256 + 256. */
const LARGEST_LEAF = 64 * 256 + 256;

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
      // gathered weights at peak: the leaf in use plus the prefetch bucket (which may end one leaf past
      // its size, as DeepSpeed's), never the model
      expect(m.gatheredParametersPeak).toBeGreaterThan(0);
      expect(m.gatheredParametersPeak).toBeLessThanOrEqual(4 * (2 * LARGEST_LEAF + PREFETCH));
      expect(m.gatheredParametersPeak).toBeLessThan(4 * psi);
      expect(m.gatheredParameters).toBe(0);
      const modelStates = m.parameters + m.optimizer + m.gradients;
      expect(modelStates).toBeLessThanOrEqual((16 * psi) / N + 16 * r.sizes.length);
      console.log(
        `stage 3 rank ${r.rank}: Ψ=${psi}, 16Ψ/N=${(16 * psi) / N} B, model states ${modelStates} B (params ${m.parameters}, grads ${m.gradients}, optimizer ${m.optimizer}), persistent ${m.persistentParameters} B, grad buckets ${r.stats!.bufferBytes} B in ${r.stats!.buckets}, gathered peak ${m.gatheredParametersPeak} B, gather staging ${m.gatherBuffers} B, ${r.stats!.gathers} gathers`,
      );
    }
  });

  it('prefetch along the trace: prefetches are used, and turning it off gives bit-identical results', async () => {
    for (const r of stage3.ranks) {
      const s = r.stats!;
      console.log(
        `stage 3 rank ${r.rank}: ${s.gathers} gathers, ${s.prefetches} prefetched, ${s.prefetchHits} prefetch hits, ${s.prefetchDiscarded} discarded, ${s.traceInvalidations} trace invalidations`,
      );
      // the first micro-step records the trace; every later one is served by prefetches
      expect(s.prefetchHits).toBeGreaterThan(s.gathers / 2);
      expect(s.prefetchHits).toBe(s.prefetches);
      expect(s.prefetchDiscarded).toBe(0);
      expect(s.traceInvalidations).toBe(0);
    }
    const off = await runZero(2, 3, STEPS, { zero: { ...ZERO3, stage3_prefetch_bucket_size: 0 } });
    for (const r of off.ranks) expect(r.stats!.prefetches).toBe(0);
    expect(off.ranks[0].stats!.gathers).toBe(stage3.ranks[0].stats!.gathers);
    expect(off.losses).toEqual(stage3.losses);
    expect(off.weights).toEqual(stage3.weights);
  });

  it('stage3_max_reuse_distance keeps weights gathered for a reuse along the trace: fewer gathers, same result', async () => {
    // DeepSpeed's default reuse distance: the last leaves of forward are used again first in backward
    const got = await runZero(2, 3, STEPS, { zero: { ...ZERO3, stage3_max_reuse_distance: 1e9 } });
    const near = await runZero(2, 3, 4, { zero: { ...ZERO3, stage3_max_reuse_distance: 20_000 } });
    for (const [i, r] of got.ranks.entries()) {
      const s = r.stats!;
      const base = stage3.ranks[i].stats!;
      console.log(
        `stage 3 rank ${r.rank}, reuse 1e9: ${s.gathers} gathers (${base.gathers} without), ${s.reuses} reuses`,
      );
      expect(s.reuses).toBeGreaterThan(0);
      expect(s.gathers + s.reuses).toBe(base.gathers);
      expect(near.ranks[i].stats!.reuses).toBeGreaterThan(0);
    }
    expect(got.weights).toEqual(stage3.weights);
    expect(got.losses).toEqual(stage3.losses);
  });

  it('prefetched weights count toward stage3_max_live_parameters', async () => {
    const maxLive = 2 * LARGEST_LEAF;
    const got = await runZero(2, 3, 4, {
      zero: { ...ZERO3, stage3_prefetch_bucket_size: 1e6, stage3_max_live_parameters: maxLive },
    });
    for (const r of got.ranks) {
      expect(r.stats!.prefetchHits).toBeGreaterThan(0);
      expect(r.memory.gatheredParametersPeak).toBeGreaterThan(4 * LARGEST_LEAF);
      expect(r.memory.gatheredParametersPeak).toBeLessThanOrEqual(4 * maxLive);
    }
  });

  it('a trace that no longer matches (the same new control flow on every rank) is dropped and recorded again', async () => {
    const got = await runZero(2, 3, 4, { mode: 'retrace', zero: ZERO3 });
    for (const r of got.ranks) {
      expect(r.stats!.traceInvalidations).toBeGreaterThanOrEqual(1);
      expect(r.stats!.prefetchHits).toBeGreaterThan(0);
    }
  });

  it('zeroInit (construction-time partitioning) never holds a full partitioned parameter and trains identically', async () => {
    const got = await runZero(2, 3, STEPS, { build: 'zeroInit', zero: ZERO3 });
    const full = 4 * got.ranks[0].numel;
    const largestParam = Math.max(...got.ranks[0].sizes);
    for (const r of got.ranks) {
      expect(r.partitionedWholeAtBuild).toBe(0);
      expect(r.fullBytesAtBuild).toBeLessThan(full / 10);
      // one transient full draw at a time, never more than the largest single parameter
      expect(r.factoryStats!.partitioned).toBe(r.stats!.partitioned);
      expect(r.factoryStats!.largestDraw).toBeLessThanOrEqual(largestParam);
      expect(r.materializedBetweenSteps).toBe(0);
    }
    expectParity('stage 3, 2 ranks, built with zeroInit', got, reference);
    // the same weights as a model built normally and partitioned at initialize (same global batch)
    expect(relDiff(got.weights.flat(), stage3.weights.flat())).toBeLessThan(1e-6);
  });

  it('the factory by hand (withParameterFactory) gives the same as zeroInit', async () => {
    const got = await runZero(2, 3, 2, { build: 'initScope', zero: ZERO3 });
    for (const r of got.ranks) expect(r.partitionedWholeAtBuild).toBe(0);
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

  it('different control flow after the trace was recorded (prefetch active) fails clearly too', async () => {
    const { exits } = await runZeroRaw(2, 3, 3, { mode: 'diverge-late', zero: ZERO3 });
    for (const e of exits) {
      expect(e.code, `rank ${e.rank} should fail:\n${e.output}`).not.toBe(0);
      expect(e.output).toMatch(/different paths|same control flow/);
    }
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

  it('every DeepSpeed key is honored or refused: non-default values of unimplemented keys name key, value and rule', async () => {
    const { exits } = await runZeroRaw(1, 3, 1, {
      zero: {
        stage3_allgather_sequential: true,
        stage3_module_granularity_threshold: 1000,
        leaf_module: { classes: ['MoEBlock'] },
        allgather_bucket_size: 2e8,
        round_robin_gradients: true,
        // honored, so accepted
        sub_group_size: 1e8,
        stage3_gather_16bit_weights_on_model_save: true,
        elastic_checkpoint: true,
        log_trace_cache_warnings: true,
      },
    });
    expect(exits[0].code).not.toBe(0);
    const out = exits[0].output;
    for (const key of [
      'stage3_allgather_sequential',
      'stage3_module_granularity_threshold',
      'leaf_module',
      'allgather_bucket_size',
      'round_robin_gradients',
    ])
      expect(out).toMatch(new RegExp(`zero_optimization\\.${key}`));
    expect(out).toMatch(/200000000/);
    expect(out).toMatch(/stage 1-2 setting/);
    for (const key of ['sub_group_size', 'stage3_gather_16bit', 'elastic_checkpoint', 'log_trace'])
      expect(out).not.toMatch(new RegExp(`zero_optimization\\.${key}`));
  });
});

describe('the README example', () => {
  it('examples/zero-init.ts trains at 2 ranks with no large parameter ever whole', async () => {
    const exits = await runRanks(2, join(__dirname, '..', 'examples', 'zero-init.ts'), () => [], {
      ZEROFLOW_COMM: 'tcp',
      ZEROFLOW_COMM_TIMEOUT_MS: '60000',
    });
    for (const e of exits) {
      expect(e.code, `rank ${e.rank}:\n${e.output}`).toBe(0);
      expect(e.output).toMatch(new RegExp(`rank ${e.rank} step 2: loss \\d+\\.\\d+, large parameters held whole: 0`));
    }
  });
});
