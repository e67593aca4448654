import {
  allGatherContiguous,
  bindParametersToBuffer,
  checkZeroStageConfig,
  chunkPerRank,
  contiguousShardView,
  dataParallelGroup,
  type FlatGroup,
  type FlatOptimizer,
  type GradientOwner,
  type GroupPartition,
  globalNorm,
  layoutFlatGroups,
  loadShardedStateDict,
  type OwnerState,
  type Parameter,
  type PluginContext,
  type ProcessGroup,
  partitionContiguous,
  reduceScatterContiguous,
  StagingBuffers,
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
export const PACKAGE_NAME = '@zeroflow/zero-stage1';

/**
 * ZeRO stage 1: optimizer state partitioned between data-parallel ranks.
 *
 * Every rank keeps the full fp32 parameters (one flat buffer per param group, padded to a multiple of the
 * data-parallel size N, which the model's tensors view) and accumulates full gradients locally over the
 * micro-steps of a window. At the step, a reduce-scatter (in chunks of `reduce_bucket_size`) leaves rank r
 * the summed gradient of its contiguous slice; it averages, clips with the global norm and steps the
 * optimizer on that slice only (so it holds 1/N of the optimizer state), and an all-gather (in chunks of
 * `allgather_bucket_size`) brings every rank the updated parameters.
 */
export class Stage1Owner implements GradientOwner {
  private readonly settings: ZeroStageSettings;
  private readonly comm: ProcessGroup | null;
  private readonly groups: FlatGroup[];
  private readonly params: Float32Array[];
  private readonly grads: Float32Array[];
  private readonly partitions: GroupPartition[];
  private readonly where = new Map<Parameter, { group: number; offset: number; size: number }>();
  private readonly reduceStaging: StagingBuffers;
  private readonly gatherStaging: StagingBuffers;
  private readonly seen = new Set<Parameter>();

  constructor(
    private readonly ctx: PluginContext,
    private readonly optimizer: FlatOptimizer,
  ) {
    this.settings = checkZeroStageConfig(ctx.config, 1, PACKAGE_NAME, optimizer);
    const dp = ctx.world.dataParallelSize;
    this.comm = dataParallelGroup(ctx.service<ProcessGroup>('comm'), dp, PACKAGE_NAME);
    const rank = this.comm?.rank ?? 0;
    this.groups = layoutFlatGroups(ctx.parameters, ctx.paramGroups, dp);
    this.params = this.groups.map((g) => sharedFloat32(g.paddedSize));
    this.grads = this.groups.map((g) => sharedFloat32(g.paddedSize));
    this.groups.forEach((g, i) => {
      bindParametersToBuffer(g, this.params[i]);
      for (const e of g.entries) this.where.set(e.param, { group: i, offset: e.offset, size: e.size });
    });
    this.partitions = this.groups.map((g) => partitionContiguous(g, dp, rank));
    const maxShard = Math.max(1, ...this.partitions.map((p) => p.shardSize));
    const chunk = (bucket: number) => chunkPerRank(bucket, dp, maxShard) * dp;
    this.reduceStaging = new StagingBuffers(chunk(this.settings.reduceBucketSize));
    this.gatherStaging = new StagingBuffers(chunk(this.settings.allgatherBucketSize));
  }

  async init(): Promise<void> {
    // Every rank starts from rank 0's weights, whatever its own initialization drew.
    if (this.comm) for (const p of this.params) await this.comm.broadcast(p, 0).promise;
  }

  onGrad(param: Parameter, g: Float32Array): void {
    const w = this.where.get(param);
    if (!w) throw new ZeroFlowError(`gradient for unknown parameter "${param.name}"`);
    const dst = this.grads[w.group];
    for (let i = 0, o = w.offset; i < w.size; i++, o++) dst[o] += g[i];
    this.seen.add(param);
  }

  async step(opts: { unscale: number; clipNorm: number; skip?: (gradNorm: number) => boolean }): Promise<StepOutcome> {
    this.checkUnused();
    const dp = this.ctx.world.dataParallelSize;
    const comm = this.comm;
    if (comm) {
      this.partitions.forEach((p, i) => {
        const chunk = chunkPerRank(this.settings.reduceBucketSize, dp, p.shardSize);
        reduceScatterContiguous(comm, p, this.grads[i], chunk, this.reduceStaging, this.settings.reduceScatter);
      });
    }
    const shardGrads = this.partitions.map((p, i) => contiguousShardView(p, this.grads[i]));
    const inv = 1 / (opts.unscale * dp);
    let sq = 0;
    for (const g of shardGrads) {
      for (let i = 0; i < g.length; i++) g[i] *= inv;
      sq += sumOfSquares(g);
    }
    const gradNorm = globalNorm(comm, sq);
    if (opts.skip?.(gradNorm) || !Number.isFinite(gradNorm)) {
      this.zeroGrad();
      return { gradNorm, skipped: true };
    }
    if (opts.clipNorm > 0 && gradNorm > opts.clipNorm) {
      const c = opts.clipNorm / (gradNorm + 1e-6);
      for (const g of shardGrads) for (let i = 0; i < g.length; i++) g[i] *= c;
    }
    this.optimizer.step(
      this.partitions.map((p, i) => ({
        params: contiguousShardView(p, this.params[i]),
        grads: shardGrads[i],
        segments: shardSegments(p),
      })),
    );
    if (comm) {
      this.partitions.forEach((p, i) => {
        const chunk = chunkPerRank(this.settings.allgatherBucketSize, dp, p.shardSize);
        allGatherContiguous(comm, p, this.params[i], chunk, this.gatherStaging, !this.settings.allgatherPartitions);
      });
    }
    this.zeroGrad();
    return { gradNorm, skipped: false };
  }

  zeroGrad(): void {
    for (const g of this.grads) g.fill(0);
    this.seen.clear();
  }

  async stateDict(): Promise<OwnerState> {
    return shardedStateDict(this.optimizer, this.partitions, 1);
  }

  async loadStateDict(state: OwnerState): Promise<void> {
    loadShardedStateDict(this.optimizer, this.partitions, 1, state);
  }

  memoryReport(): Record<string, number> {
    let optimizerBytes = 0;
    for (const g of this.optimizer.stateDict().groups)
      for (const v of Object.values(g.buffers)) optimizerBytes += v.byteLength;
    return {
      parameters: this.params.reduce((a, p) => a + p.byteLength, 0),
      gradients: this.grads.reduce((a, g) => a + g.byteLength, 0),
      optimizer: optimizerBytes,
      communication: this.reduceStaging.bytes + this.gatherStaging.bytes,
    };
  }

  /** `ignore_unused_parameters: false`: a trainable parameter without a gradient in this window is an error. */
  private checkUnused(): void {
    if (this.settings.ignoreUnusedParameters) return;
    const unused = [...this.where.keys()].filter((p) => !this.seen.has(p)).map((p) => p.name);
    if (unused.length)
      throw new ZeroFlowError(
        `parameters got no gradient in this step: ${unused.join(', ')} (set zero_optimization.ignore_unused_parameters to true to allow it)`,
      );
  }
}
