import {
  dataParallelGroup,
  type FlatOptimizer,
  type GradientOwner,
  globalNorm,
  loadShardedStateDict,
  type OwnerState,
  type Parameter,
  type PluginContext,
  type ProcessGroup,
  type StepOutcome,
  shardedStateDict,
  shardSegments,
  sharedFloat32,
  sumOfSquares,
  ZeroFlowError,
} from '@zeroflow/core';
import { checkStage3Config, PACKAGE_NAME, type Stage3Settings } from './config.js';
import { takeFactoryShard } from './factory.js';
import { ShardGatherer } from './gather.js';
import { ShardGradientReducer } from './grad-reducer.js';
import { copyChunk, layoutStage3, type ParamSlot, type Stage3Layout } from './layout.js';

/**
 * ZeRO stage 3: parameters, gradients and optimizer state partitioned between data-parallel ranks.
 *
 * Rank r keeps, per param group, one fp32 shard of the parameters (its chunk of every parameter, see
 * `layout.ts`), the gradient shard of the same layout and the optimizer state of that shard: 16Ψ/N bytes
 * with Adam in fp32. `Parameter.tensor` is null for partitioned parameters: the {@link ShardGatherer}
 * installed as the engine's parameter access rebuilds a leaf's weights by all-gather right before the leaf
 * computes, and frees them right after, in forward and again in backward. Gradients go through
 * {@link ShardGradientReducer} (bucketed reduce-scatter during backward) straight into the shard. Small
 * parameters (`stage3_param_persistence_threshold`) are also kept whole on every rank, refreshed by one
 * all-gather after each step; like DeepSpeed, their optimizer state stays partitioned with the rest.
 */
export class Stage3Owner implements GradientOwner {
  readonly settings: Stage3Settings;
  readonly layout: Stage3Layout;
  private readonly comm: ProcessGroup | null;
  private readonly rank: number;
  private readonly shards: Float32Array[];
  private readonly shardGrads: Float32Array[];
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
    this.layout = layoutStage3(ctx.parameters, ctx.paramGroups, dp, this.rank, this.settings.persistenceThreshold);
    this.shards = this.layout.partitions.map((p) => new Float32Array(p.shardSize));
    this.shardGrads = this.layout.partitions.map((p) => new Float32Array(p.shardSize));
    this.persistent = this.layout.ordered.filter((s) => s.persistent);
    this.reducer = new ShardGradientReducer(
      this.layout.ordered,
      this.comm,
      this.shardGrads,
      this.settings.reduceBucketSize,
      this.settings.overlapComm,
    );
    this.gatherer = new ShardGatherer(this.layout, this.comm, this.shards, {
      maxLiveElements: this.settings.maxLiveParameters,
    });
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
      if (!s.persistent) this.free(p);
      else p.assign(full.slice());
    }
    // Persistent parameters built in initScope are whole but may differ per rank: rebuild them from the shards.
    if (this.persistent.length) this.refreshPersistent();
  }

  beforeBackward(): void {
    this.syncFromMaterialized();
    this.reducer.begin();
  }

  onUse(param: Parameter): void {
    this.reducer.onUse(param);
  }

  onGrad(param: Parameter, grad: Float32Array): void {
    this.reducer.onGrad(param, grad);
  }

  afterBackward(): void {
    const unused = this.reducer.finish();
    if (!this.settings.ignoreUnusedParameters && unused.length) {
      throw new ZeroFlowError(
        `parameters got no gradient in this backward: ${unused.map((p) => p.name).join(', ')} (set zero_optimization.ignore_unused_parameters to true to allow it)`,
      );
    }
  }

  async step(opts: { unscale: number; clipNorm: number; skip?: (gradNorm: number) => boolean }): Promise<StepOutcome> {
    this.syncFromMaterialized();
    const inv = 1 / (opts.unscale * this.ctx.world.dataParallelSize);
    let sq = 0;
    for (const g of this.shardGrads) {
      for (let i = 0; i < g.length; i++) g[i] *= inv;
      sq += sumOfSquares(g);
    }
    const gradNorm = globalNorm(this.comm, sq);
    if (opts.skip?.(gradNorm) || !Number.isFinite(gradNorm)) {
      this.zeroGrad();
      return { gradNorm, skipped: true };
    }
    if (opts.clipNorm > 0 && gradNorm > opts.clipNorm) {
      const c = opts.clipNorm / (gradNorm + 1e-6);
      for (const g of this.shardGrads) for (let i = 0; i < g.length; i++) g[i] *= c;
    }
    this.optimizer.step(
      this.layout.partitions.map((p, i) => ({
        params: this.shards[i],
        grads: this.shardGrads[i],
        segments: shardSegments(p),
      })),
    );
    if (this.persistent.length) this.refreshPersistent();
    this.zeroGrad();
    return { gradNorm, skipped: false };
  }

  zeroGrad(): void {
    for (const g of this.shardGrads) g.fill(0);
  }

  /** This rank's optimizer shard (core's sharded layout) and its fp32 parameter shard (`params.group{i}`). */
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
    for (const s of this.layout.ordered) if (!s.persistent) this.free(s.param);
    if (this.persistent.length) this.refreshPersistent();
  }

  /**
   * Full fp32 values of every parameter by name, gathered from all ranks: a collective, so every rank must
   * call it (core's checkpoint writes `model.safetensors` from it; see the README).
   */
  async fullParameters(): Promise<Record<string, Float32Array>> {
    this.syncFromMaterialized();
    const out: Record<string, Float32Array> = {};
    for (const s of this.layout.ordered) {
      if (s.persistent) out[s.name] = s.param.values();
      else {
        out[s.name] = this.gatherer.gather([s])[0];
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
    for (const s of this.layout.ordered) if (!s.persistent) s.param.assign(full[s.name]);
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
    let optimizerBytes = 0;
    for (const g of this.optimizer.stateDict().groups)
      for (const v of Object.values(g.buffers)) optimizerBytes += v.byteLength;
    const stats = this.gatherer.stats;
    let buffers = 0;
    for (const { param } of this.ctx.parameters)
      if (!this.layout.slots.has(param) && param.tensor) buffers += param.size * 4;
    return {
      parameters: this.shards.reduce((a, s) => a + s.byteLength, 0),
      gradients: this.shardGrads.reduce((a, g) => a + g.byteLength, 0),
      optimizer: optimizerBytes,
      communication: this.reducer.bufferBytes,
      persistentParameters: this.persistent.reduce((a, s) => a + s.param.size * 4, 0),
      gatheredParameters: stats.liveBytes,
      gatheredParametersPeak: stats.peakBytes,
      gatherBuffers: stats.stagingBytes,
      buffers,
    };
  }

  /** Buckets, bucket bytes and gathers so far, for reports and tests. */
  get stats(): { buckets: number; bufferBytes: number; gathers: number; persistent: number; partitioned: number } {
    return {
      buckets: this.reducer.count,
      bufferBytes: this.reducer.bufferBytes,
      gathers: this.gatherer.stats.gathers,
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
    this.persistent.forEach((s, i) => s.param.assign(full[i]));
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
      copyChunk(t.dataSync() as Float32Array, this.rank, s.chunk, this.shardOf(s));
      if (!s.persistent) this.free(s.param);
    }
  }
}
