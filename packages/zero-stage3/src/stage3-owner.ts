import {
  asFloat32,
  dataParallelGroup,
  type FlatBuffer,
  type FlatOptimizer,
  type GradientOwner,
  loadShardedStateDict,
  type MixedPrecisionLayout,
  mixedPrecisionLayout,
  type OwnerState,
  optimizerStateBytes,
  type Parameter,
  type PluginContext,
  type ProcessGroup,
  type StepOutcome,
  shardedStateDict,
  shardSegments,
  sharedFloat32,
  unscaleAndClip,
  ZeroFlowError,
} from '@zeroflow/core';
import { HeaderedAllGather } from './all-gather.js';
import { checkStage3Config, PACKAGE_NAME, type Stage3Settings } from './config.js';
import { takeFactoryShard } from './factory.js';
import { type GatherStats, ShardGatherer } from './gather.js';
import { ShardGradientReducer } from './grad-reducer.js';
import { HalfShards } from './half-shards.js';
import { copyChunk, layoutStage3, type ParamSlot, type Stage3Layout } from './layout.js';

/** What {@link Stage3Owner.stats} reports: the gatherer's counters, the reduce buckets and the parameter split. */
export type Stage3Stats = Omit<GatherStats, 'liveBytes' | 'peakBytes' | 'stagingBytes'> & {
  buckets: number;
  bufferBytes: number;
  persistent: number;
  partitioned: number;
};

/**
 * ZeRO stage 3: parameters, gradients and optimizer state partitioned between data-parallel ranks.
 *
 * Rank r keeps, per param group, one fp32 shard of the parameters (its chunk of every parameter, see
 * `layout.ts`), the gradient shard of the same layout and the optimizer state of that shard: 16Ψ/N bytes
 * with Adam in fp32. `Parameter.tensor` is null for partitioned parameters: the {@link ShardGatherer}
 * installed as the engine's parameter access rebuilds a leaf's weights by all-gather right before the leaf
 * computes (prefetched along the recorded trace), and frees them right after (unless the trace reuses them
 * soon), in forward and again in backward. Gradients go through
 * {@link ShardGradientReducer} (bucketed reduce-scatter during backward) straight into the shard. Small
 * parameters (`stage3_param_persistence_threshold`) are also kept whole on every rank, refreshed by one
 * all-gather after each step; like DeepSpeed, their optimizer state stays partitioned with the rest.
 *
 * With the `amp` service (fp16/bf16, as DeepSpeed's stage 3): the parameter shard is 16-bit (2Ψ/N,
 * {@link HalfShards}) and the fp32 shard the optimizer steps becomes the master weights (4Ψ/N); gradient
 * shards are 16-bit (2Ψ/N; fp32 with `data_types.grad_accum_dtype: "fp32"`): 16Ψ/N with Adam. Gathers and
 * gradient reduce-scatters move 16-bit data; the gatherer widens each leaf's weights to fp32 just in time
 * (stage 3 installs the only parameter access: amp does not install its own at stage 3). Persistent
 * parameters are whole 16-bit copies. Checkpoints and `fullParameters()` carry the fp32 masters.
 */
export class Stage3Owner implements GradientOwner {
  readonly settings: Stage3Settings;
  readonly layout: Stage3Layout;
  private readonly comm: ProcessGroup | null;
  private readonly rank: number;
  /** fp32 parameter shards, or under amp the fp32 master shards (what the optimizer steps). */
  private readonly shards: Float32Array[];
  private readonly shardGrads: FlatBuffer[];
  private readonly mp: MixedPrecisionLayout | null;
  /** amp: the 16-bit parameter shards and persistent copies; null in fp32. */
  private readonly half: HalfShards | null;
  /** amp: all-gathers of the fp32 masters (checkpoints), apart from the 16-bit gathers of the forward. */
  private readonly masterGather: HeaderedAllGather | null;
  private workspaceBytes = 0;
  private readonly reducer: ShardGradientReducer;
  private readonly gatherer: ShardGatherer;
  private readonly persistent: ParamSlot[];

  constructor(
    private readonly ctx: PluginContext,
    private readonly optimizer: FlatOptimizer,
  ) {
    this.settings = checkStage3Config(ctx.config, optimizer);
    const dp = ctx.world.dataParallelSize;
    this.comm = dataParallelGroup(ctx.service<ProcessGroup>('comm'), dp, PACKAGE_NAME);
    this.rank = this.comm?.rank ?? 0;
    this.layout = layoutStage3(
      ctx.parameters,
      ctx.paramGroups,
      dp,
      this.rank,
      this.settings.persistenceThreshold,
      this.settings.modelPersistenceThreshold,
    );
    const mp = mixedPrecisionLayout(ctx, PACKAGE_NAME);
    this.mp = mp;
    this.shards = this.layout.partitions.map((p) => new Float32Array(p.shardSize));
    const half = mp ? new HalfShards(mp.format, this.layout) : null;
    this.half = half;
    this.masterGather = half ? new HeaderedAllGather(this.comm, this.shards) : null;
    this.shardGrads = this.layout.partitions.map((p) =>
      mp?.gradFormat ? new Uint16Array(p.shardSize) : new Float32Array(p.shardSize),
    );
    this.persistent = this.layout.ordered.filter((s) => s.persistent);
    this.reducer = new ShardGradientReducer(
      this.layout.ordered,
      this.comm,
      this.shardGrads,
      this.settings.reduceBucketSize,
      this.settings.overlapComm,
      // buckets travel in 16 bits under amp, whatever the shard accumulates in (as stage 2)
      mp?.format ?? null,
    );
    this.gatherer = new ShardGatherer(
      this.layout,
      this.comm,
      half ? half.shards : this.shards,
      {
        maxLiveElements: this.settings.maxLiveParameters,
        prefetchElements: this.settings.prefetchBucketSize,
        maxReuseDistance: this.settings.maxReuseDistance,
        format: mp?.format ?? null,
        persistentHalf: half ? (p) => half.persistent.get(p) : undefined,
      },
      (m) => {
        if (this.settings.logTraceWarnings) ctx.log(m);
      },
    );
    ctx.setParameterAccess(this.gatherer);
  }

  /**
   * Partitions the weights: a parameter built normally (full value on every rank) is broadcast from rank 0,
   * this rank keeps its chunk and the full value is freed; one built inside `engine.initScope` already
   * holds only this rank's chunk, which is adopted as is.
   */
  async init(): Promise<void> {
    for (const s of this.layout.ordered) {
      const p = s.param;
      const shard = this.shardOf(s);
      const own = takeFactoryShard(p);
      if (own) {
        if (own.length !== s.chunk)
          throw new ZeroFlowError(
            `parameter "${s.name}" was partitioned at construction for a different data-parallel size (${own.length} elements per rank, expected ${s.chunk})`,
          );
        shard.set(own);
        continue;
      }
      if (!p.tensor) throw new ZeroFlowError(`parameter "${s.name}" has no value to partition`);
      const full = sharedFloat32(p.size);
      full.set(p.tensor.dataSync() as Float32Array);
      // Every rank starts from rank 0's weights, whatever its own initialization drew.
      if (this.comm) await this.comm.broadcast(full, 0).promise;
      copyChunk(full, this.rank, s.chunk, shard);
      // under amp persistent parameters are 16-bit copies, rebuilt below: no fp32 tensor stays
      if (!s.persistent || this.half) this.free(p);
      else p.assign(full.slice());
    }
    this.half?.narrowAll(this.shards);
    // Persistent parameters built in initScope are whole but may differ per rank: rebuild them from the shards.
    if (this.persistent.length) this.refreshPersistent();
  }

  beforeBackward(): void {
    this.syncFromMaterialized();
    this.reducer.begin();
    this.gatherer.beginPass();
  }

  onUse(param: Parameter): void {
    this.reducer.onUse(param);
  }

  onGrad(param: Parameter, grad: Float32Array): void {
    this.reducer.onGrad(param, grad);
  }

  afterBackward(): void {
    this.gatherer.endPass();
    const unused = this.reducer.finish();
    if (!this.settings.ignoreUnusedParameters && unused.length) {
      throw new ZeroFlowError(
        `parameters got no gradient in this backward: ${unused.map((p) => p.name).join(', ')} (set zero_optimization.ignore_unused_parameters to true to allow it)`,
      );
    }
  }

  async step(opts: { unscale: number; clipNorm: number; skip?: (gradNorm: number) => boolean }): Promise<StepOutcome> {
    this.syncFromMaterialized();
    // 16-bit gradient shards are unscaled, clipped and stepped in fp32 (a transient copy of the shard)
    const grads = this.shardGrads.map((g) => asFloat32(g, this.mp?.format ?? 'bf16'));
    this.workspaceBytes = grads.reduce((a, g, i) => a + (g === this.shardGrads[i] ? 0 : g.byteLength), 0);
    const divisor = opts.unscale * this.ctx.world.dataParallelSize;
    const { gradNorm, skipped } = unscaleAndClip(grads, this.comm, { ...opts, divisor });
    if (skipped) {
      this.zeroGrad();
      return { gradNorm, skipped };
    }
    this.optimizer.step(
      this.layout.partitions.map((p, i) => ({
        params: this.shards[i],
        grads: grads[i],
        segments: shardSegments(p),
      })),
    );
    // amp: the stepped fp32 masters are rounded into the 16-bit shards that the next gathers move
    this.half?.narrowAll(this.shards);
    if (this.persistent.length) this.refreshPersistent();
    this.zeroGrad();
    return { gradNorm, skipped: false };
  }

  zeroGrad(): void {
    for (const g of this.shardGrads) g.fill(0);
  }

  /**
   * This rank's optimizer shard (core's sharded layout) and its fp32 parameter shard (`params.group{i}`;
   * under amp the fp32 master shard, so a resume is bit-exact).
   */
  async stateDict(): Promise<OwnerState> {
    this.syncFromMaterialized();
    const state = shardedStateDict(this.optimizer, this.layout.partitions, 3);
    this.shards.forEach((s, i) => {
      state.tensors[`params.group${i}`] = { shape: [s.length], data: s.slice() };
    });
    state.meta.persistenceThreshold = this.settings.persistenceThreshold;
    return state;
  }

  /**
   * Loads this rank's optimizer and parameter shards. Core's loader has already loaded the model file into
   * `Parameter.tensor` (materializing partitioned parameters): those full copies are freed again here.
   */
  async loadStateDict(state: OwnerState): Promise<void> {
    loadShardedStateDict(this.optimizer, this.layout.partitions, 3, state);
    this.shards.forEach((s, i) => {
      const t = state.tensors[`params.group${i}`];
      if (!t || t.data.length !== s.length)
        throw new ZeroFlowError(
          `ZeRO-3 state lacks params.group${i} of ${s.length} elements for this rank (saved by another stage or size?)`,
        );
      s.set(t.data);
    });
    this.half?.narrowAll(this.shards);
    for (const s of this.layout.ordered) if (!s.persistent || this.half) this.free(s.param);
    if (this.persistent.length) this.refreshPersistent();
  }

  /**
   * Full fp32 values of every parameter by name, gathered from all ranks: a collective, so every rank must
   * call it (core's checkpoint writes `model.safetensors` from it; see the README). Under amp these are the
   * fp32 master weights (gathered in fp32), not their 16-bit rounding.
   */
  async fullParameters(): Promise<Record<string, Float32Array>> {
    this.syncFromMaterialized();
    const out: Record<string, Float32Array> = {};
    const masters = this.masterGather;
    if (masters) {
      // amp: the fp32 masters of every parameter (persistent ones included), not their 16-bit rounding
      for (const s of this.layout.ordered)
        out[s.name] = masters.complete(masters.launch([s], undefined))[0] as Float32Array;
      return out;
    }
    for (const s of this.layout.ordered) {
      if (s.persistent) out[s.name] = s.param.values();
      else {
        out[s.name] = this.gatherer.gather([s])[0] as Float32Array;
        this.gatherer.releaseElements(s.param.size);
      }
    }
    return out;
  }

  /**
   * Runs `fn` with every partitioned parameter materialized in `Parameter.tensor` (DeepSpeed's
   * `GatheredParameters`), then partitions them again, keeping any change `fn` made: changes must be the
   * same on every rank. A collective: every rank must call it.
   */
  async withGatheredParameters<T>(fn: () => T | Promise<T>): Promise<T> {
    const full = await this.fullParameters();
    for (const s of this.layout.ordered) if (!s.persistent || this.half) s.param.assign(full[s.name]);
    try {
      return await fn();
    } finally {
      this.syncFromMaterialized();
    }
  }

  /**
   * Bytes held by this rank: `parameters` the fp32 shard (4Ψ/N), `gradients` the gradient shard (4Ψ/N)
   * plus pooled bucket buffers, `optimizer` the optimizer shard (8Ψ/N with Adam), `persistentParameters`
   * the small parameters kept whole, `gatheredParametersPeak` the most gathered weights held at once,
   * `gatherBuffers` the all-gather staging buffers, `buffers` parameters that are not trained.
   */
  memoryReport(): Record<string, number> {
    const optimizerBytes = optimizerStateBytes(this.optimizer);
    const stats = this.gatherer.stats;
    let buffers = 0;
    for (const { param } of this.ctx.parameters)
      if (!this.layout.slots.has(param) && param.tensor) buffers += param.size * 4;
    const fp32Bytes = this.shards.reduce((a, s) => a + s.byteLength, 0);
    const report: Record<string, number> = {
      parameters: this.half ? this.half.shardBytes : fp32Bytes,
      gradients: this.shardGrads.reduce((a, g) => a + g.byteLength, 0),
      optimizer: optimizerBytes,
      communication: this.reducer.bufferBytes,
      persistentParameters: this.half
        ? this.half.persistentBytes
        : this.persistent.reduce((a, s) => a + s.param.size * 4, 0),
      gatheredParameters: stats.liveBytes,
      gatheredParametersPeak: stats.peakBytes,
      gatherBuffers: stats.stagingBytes + (this.masterGather?.stagingBytes ?? 0),
      buffers,
    };
    if (this.half) {
      report.masterWeights = fp32Bytes;
      report.stepWorkspace = this.workspaceBytes;
    }
    return report;
  }

  /**
   * Buckets, bucket bytes, and the gather counters so far (gathers, prefetches launched, prefetch hits,
   * prefetches discarded, trace invalidations, reuses of kept weights), for reports and tests.
   */
  get stats(): Stage3Stats {
    const { liveBytes: _live, peakBytes: _peak, stagingBytes: _staging, ...counts } = this.gatherer.stats;
    return {
      buckets: this.reducer.count,
      bufferBytes: this.reducer.bufferBytes,
      ...counts,
      persistent: this.persistent.length,
      partitioned: this.layout.ordered.length - this.persistent.length,
    };
  }

  private shardOf(s: ParamSlot): Float32Array {
    return this.shards[s.group].subarray(s.shardOffset, s.shardOffset + s.chunk);
  }

  private free(p: Parameter): void {
    p.tensor?.dispose();
    p.tensor = null;
  }

  /** Rebuilds every persistent parameter's full value from the shards (one all-gather). */
  private refreshPersistent(): void {
    const full = this.gatherer.gather(this.persistent);
    this.gatherer.releaseElements(this.persistent.reduce((a, s) => a + s.param.size, 0));
    this.persistent.forEach((s, i) => {
      const v = full[i];
      // amp: 16-bit copies (the all-gather moved 16-bit data); fp32: the parameter's tensor
      if (v instanceof Uint16Array) this.half?.persistent.set(s.param, v);
      else s.param.assign(v);
    });
  }

  /**
   * Takes values loaded into `Parameter.tensor` from outside (`model.loadStateDict`, core's checkpoint
   * loader) into the shards: a partitioned parameter's full copy gives this rank its chunk and is freed;
   * a persistent parameter's value is copied into its chunk. No communication: every rank holds the value.
   */
  private syncFromMaterialized(): void {
    for (const s of this.layout.ordered) {
      const t = s.param.tensor;
      if (!t) continue;
      const values = t.dataSync() as Float32Array;
      copyChunk(values, this.rank, s.chunk, this.shardOf(s));
      if (this.half) {
        // amp: the value reaches the master chunk (above), its 16-bit chunk and, if persistent, its copy
        this.half.narrowChunk(s, this.shardOf(s));
        if (s.persistent) this.half.setPersistentFrom(s.param, values);
        this.free(s.param);
      } else if (!s.persistent) this.free(s.param);
    }
  }
}
