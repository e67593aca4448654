import {
  allGatherUnits,
  BucketReducer,
  bindParametersToBuffer,
  checkZeroStageConfig,
  contiguousShardView,
  dataParallelGroup,
  type FlatOptimizer,
  type GradientOwner,
  type GroupPartition,
  gatherShard,
  globalNorm,
  isContiguous,
  layoutFlatGroups,
  loadShardedStateDict,
  type OwnerState,
  type Parameter,
  type PluginContext,
  type ProcessGroup,
  partitionByUnits,
  type StepOutcome,
  shardedStateDict,
  shardSegments,
  sharedFloat32,
  sumOfSquares,
  type tf,
  ZeroFlowError,
  type ZeroStageSettings,
} from '@zeroflow/core';

/** The npm name of this plugin (errors name it). */
export const PACKAGE_NAME = '@zeroflow/zero-stage2';

/** Launched, unfinished bucket reductions at once when `overlap_comm` is true. */
const MAX_BUCKETS_IN_FLIGHT = 2;

/**
 * ZeRO stage 2: optimizer state and gradients partitioned between data-parallel ranks.
 *
 * Every rank keeps the full fp32 parameters (flat buffers per param group that the model's tensors view).
 * Each flat group is cut into buckets of `reduce_bucket_size` elements (a multiple of N); rank r owns the
 * r-th of the N equal chunks of every bucket, and keeps gradient and optimizer state for those chunks only.
 * During every backward, a bucket is reduce-scattered as soon as all its parameters have their gradient
 * (buckets launched in a fixed order, overlapping the rest of backward when `overlap_comm` is true), and
 * rank r adds the reduced chunk to its gradient shard. Reducing at every micro-step, as DeepSpeed's stage 2
 * does, means no rank ever holds a full gradient, only the buckets being filled or in flight. At the step:
 * average, clip with the global norm, step the optimizer on the shard, all-gather each bucket's chunks back
 * into the flat parameters.
 */
export class Stage2Owner implements GradientOwner {
  private readonly settings: ZeroStageSettings;
  private readonly comm: ProcessGroup | null;
  private readonly params: Float32Array[];
  private readonly shardGrads: Float32Array[];
  private readonly partitions: GroupPartition[];
  private readonly reducer: BucketReducer;
  private workspaceBytes = 0;

  constructor(
    private readonly ctx: PluginContext,
    private readonly optimizer: FlatOptimizer,
  ) {
    this.settings = checkZeroStageConfig(ctx.config, 2, PACKAGE_NAME, optimizer);
    const dp = ctx.world.dataParallelSize;
    this.comm = dataParallelGroup(ctx.service<ProcessGroup>('comm'), dp, PACKAGE_NAME);
    const rank = this.comm?.rank ?? 0;
    const groups = layoutFlatGroups(ctx.parameters, ctx.paramGroups, dp);
    this.params = groups.map((g) => sharedFloat32(g.paddedSize));
    groups.forEach((g, i) => bindParametersToBuffer(g, this.params[i]));
    this.partitions = groups.map((g) => partitionByUnits(g, dp, rank, this.settings.reduceBucketSize));
    this.shardGrads = this.partitions.map((p) => new Float32Array(p.shardSize));
    this.reducer = new BucketReducer(this.partitions, this.comm, this.shardGrads, {
      reduceScatter: this.settings.reduceScatter,
      overlap: this.settings.overlapComm,
      maxInFlight: MAX_BUCKETS_IN_FLIGHT,
      modelOrder: ctx.parameters.map((p) => p.param),
    });
  }

  async init(): Promise<void> {
    // Every rank starts from rank 0's weights, whatever its own initialization drew.
    if (this.comm) for (const p of this.params) await this.comm.broadcast(p, 0).promise;
  }

  beforeBackward(): void {
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
    const dp = this.ctx.world.dataParallelSize;
    const inv = 1 / (opts.unscale * dp);
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
    // A shard made of several bucket chunks is not one slice of the flat buffer: the optimizer steps a
    // contiguous copy (transient, 4 bytes x shard), which the all-gather then writes back into place.
    this.workspaceBytes = 0;
    const shardParams = this.partitions.map((p, i) => {
      if (isContiguous(p)) return contiguousShardView(p, this.params[i]);
      const copy = new Float32Array(p.shardSize);
      gatherShard(p, this.params[i], copy);
      this.workspaceBytes += copy.byteLength;
      return copy;
    });
    this.optimizer.step(
      this.partitions.map((p, i) => ({
        params: shardParams[i],
        grads: this.shardGrads[i],
        segments: shardSegments(p),
      })),
    );
    const comm = this.comm;
    if (comm) {
      this.partitions.forEach((p, i) =>
        allGatherUnits(
          comm,
          p,
          shardParams[i],
          this.params[i],
          this.settings.allgatherBucketSize,
          !this.settings.allgatherPartitions,
        ),
      );
    }
    this.zeroGrad();
    return { gradNorm, skipped: false };
  }

  zeroGrad(): void {
    for (const g of this.shardGrads) g.fill(0);
  }

  async stateDict(): Promise<OwnerState> {
    return shardedStateDict(this.optimizer, this.partitions, 2);
  }

  async loadStateDict(state: OwnerState): Promise<void> {
    loadShardedStateDict(this.optimizer, this.partitions, 2, state);
  }

  /**
   * Bytes held by this rank: `gradients` is the gradient shard plus the pooled bucket buffers;
   * `stepWorkspace` the transient contiguous parameter shard of the last step (0 when one rank).
   */
  memoryReport(): Record<string, number> {
    let optimizerBytes = 0;
    for (const g of this.optimizer.stateDict().groups)
      for (const v of Object.values(g.buffers)) optimizerBytes += v.byteLength;
    return {
      parameters: this.params.reduce((a, p) => a + p.byteLength, 0),
      gradients: this.shardGrads.reduce((a, g) => a + g.byteLength, 0),
      optimizer: optimizerBytes,
      // reduce buckets in flight are communication buffers, not model states (as stage 1's staging)
      communication: this.reducer.bufferBytes,
      stepWorkspace: this.workspaceBytes,
    };
  }

  /** Bucket count and pooled bucket bytes, for reports and tests. */
  get bucketStats(): { buckets: number; bufferBytes: number; peakLiveBytes: number } {
    return {
      buckets: this.reducer.count,
      bufferBytes: this.reducer.bufferBytes,
      peakLiveBytes: this.reducer.peakLiveBytes,
    };
  }
}
