import {
  allGatherUnits,
  asFloat32,
  BucketReducer,
  checkZeroStageConfig,
  contiguousShardView,
  dataParallelGroup,
  dtypeOpts,
  type FlatBuffer,
  type FlatOptimizer,
  type GradientOwner,
  type GroupPartition,
  gatherShard,
  type HalfFlatParameters,
  isContiguous,
  layoutFlatGroups,
  loadShardedStateDict,
  type MixedPrecisionLayout,
  mixedPrecisionLayout,
  type OwnerState,
  optimizerStateBytes,
  ownerParameters,
  type Parameter,
  type PluginContext,
  type ProcessGroup,
  partitionByUnits,
  type StepOutcome,
  shardedStateDict,
  shardSegments,
  sharedFloat32,
  unscaleAndClip,
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
 *
 * With the `amp` service (fp16/bf16): the full parameters are 16-bit (2Ψ), buckets and the gradient shard
 * are 16-bit (2Ψ/N; an fp32 shard with `data_types.grad_accum_dtype: "fp32"`), and the fp32 master weights
 * exist for this rank's shard only, beside Adam's moments: 2Ψ + 14Ψ/N. Both collectives move 16-bit data.
 */
export class Stage2Owner implements GradientOwner {
  private readonly settings: ZeroStageSettings;
  private readonly comm: ProcessGroup | null;
  /** fp32 parameters (fp32 training) or null under amp. */
  private readonly params: Float32Array[] | null;
  private readonly half: HalfFlatParameters | null;
  private readonly mp: MixedPrecisionLayout | null;
  private readonly shardGrads: FlatBuffer[];
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
    this.partitions = groups.map((g) => partitionByUnits(g, dp, rank, this.settings.reduceBucketSize));
    const mp = mixedPrecisionLayout(ctx, PACKAGE_NAME);
    this.mp = mp;
    const shards = this.partitions.map((p) => ({ size: p.shardSize, ranges: p.ranges }));
    ({ params: this.params, half: this.half } = ownerParameters(mp, groups, shards, dp));
    this.shardGrads = this.partitions.map((p) =>
      mp?.gradFormat ? new Uint16Array(p.shardSize) : new Float32Array(p.shardSize),
    );
    this.reducer = new BucketReducer(this.partitions, this.comm, this.shardGrads, {
      reduceScatter: this.settings.reduceScatter,
      overlap: this.settings.overlapComm,
      maxInFlight: MAX_BUCKETS_IN_FLIGHT,
      modelOrder: ctx.parameters.map((p) => p.param),
      // buckets travel in 16 bits under amp, whatever the shard accumulates in
      half: mp?.format,
    });
  }

  async init(): Promise<void> {
    // Every rank starts from rank 0's weights, whatever its own initialization drew.
    if (!this.comm) return;
    if (this.half) await this.half.broadcastInitial(this.comm);
    else for (const p of this.params!) await this.comm.broadcast(p, 0).promise;
  }

  beforeBackward(): void {
    // weights changed through Parameter.tensor (param.load, a plugin) reach the 16-bit copy before forward
    this.half?.sync();
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
    this.half?.sync();
    const dp = this.ctx.world.dataParallelSize;
    const format = this.mp?.format ?? 'bf16';
    // 16-bit gradient shards are unscaled, clipped and stepped in fp32 (a transient copy of the shard)
    const grads = this.shardGrads.map((g) => asFloat32(g, format));
    const { gradNorm, skipped } = unscaleAndClip(grads, this.comm, { ...opts, divisor: opts.unscale * dp });
    if (skipped) {
      this.zeroGrad();
      return { gradNorm, skipped };
    }
    this.workspaceBytes = grads.reduce((a, g, i) => a + (g === this.shardGrads[i] ? 0 : g.byteLength), 0);
    const comm = this.comm;
    if (this.half) {
      const half = this.half;
      // the masters are this rank's shard already (contiguous): step them, all-gather their 16-bit rounding
      this.optimizer.step(
        this.partitions.map((p, i) => ({ params: half.master[i], grads: grads[i], segments: shardSegments(p) })),
      );
      half.narrowMasters();
      if (comm) {
        this.partitions.forEach((p, i) => {
          const shard16 = new Uint16Array(p.shardSize);
          for (const r of p.ranges)
            shard16.set(half.flat[i].subarray(r.flatStart, r.flatStart + r.length), r.shardStart);
          this.workspaceBytes += shard16.byteLength;
          const o = dtypeOpts(shard16, format);
          allGatherUnits(
            comm,
            p,
            shard16,
            half.flat[i],
            this.settings.allgatherBucketSize,
            !this.settings.allgatherPartitions,
            o,
          );
        });
      }
      this.zeroGrad();
      return { gradNorm, skipped: false };
    }
    // A shard made of several bucket chunks is not one slice of the flat buffer: the optimizer steps a
    // contiguous copy (transient, 4 bytes x shard), which the all-gather then writes back into place.
    const params = this.params!;
    const shardParams = this.partitions.map((p, i) => {
      if (isContiguous(p)) return contiguousShardView(p, params[i]);
      const copy = new Float32Array(p.shardSize);
      gatherShard(p, params[i], copy);
      this.workspaceBytes += copy.byteLength;
      return copy;
    });
    this.optimizer.step(
      this.partitions.map((p, i) => ({
        params: shardParams[i],
        grads: grads[i],
        segments: shardSegments(p),
      })),
    );
    if (comm) {
      this.partitions.forEach((p, i) =>
        allGatherUnits(
          comm,
          p,
          shardParams[i],
          params[i],
          this.settings.allgatherBucketSize,
          !this.settings.allgatherPartitions,
        ),
      );
    }
    this.zeroGrad();
    return { gradNorm, skipped: false };
  }

  zeroGrad(): void {
    this.half?.sync();
    for (const g of this.shardGrads) g.fill(0);
  }

  /** Frees `Parameter.tensor` snapshots still held under amp (`engine.close()`). */
  dispose(): void {
    this.half?.dispose();
  }

  /**
   * Under amp: the fp32 master weights of every rank, gathered (a collective: every rank calls it when a
   * checkpoint is saved), by name.
   */
  async fullParameters(): Promise<Record<string, Float32Array>> {
    const half = this.half;
    if (!half) return {};
    half.sync();
    const full = this.partitions.map((p) => sharedFloat32(p.group.paddedSize));
    half.mastersInto(full);
    const comm = this.comm;
    if (comm)
      this.partitions.forEach((p, i) =>
        allGatherUnits(comm, p, half.master[i], full[i], this.settings.allgatherBucketSize),
      );
    return half.byName(full);
  }

  async stateDict(): Promise<OwnerState> {
    this.half?.sync();
    return shardedStateDict(this.optimizer, this.partitions, 2);
  }

  async loadStateDict(state: OwnerState): Promise<void> {
    this.half?.sync();
    loadShardedStateDict(this.optimizer, this.partitions, 2, state);
  }

  /**
   * Bytes held by this rank: `parameters` (fp32, or 16-bit under amp), `masterWeights` (amp: this rank's
   * fp32 shard), `gradients` the gradient shard, `optimizer`, `communication` the pooled bucket buffers;
   * `stepWorkspace` transient copies of the last step (fp32 gradient shard under amp, parameter shards);
   * `materializedParameters` (amp) fp32 copies read through `Parameter.tensor`.
   */
  memoryReport(): Record<string, number> {
    const optimizerBytes = optimizerStateBytes(this.optimizer);
    const report: Record<string, number> = {
      parameters: this.half ? this.half.halfBytes : this.params!.reduce((a, p) => a + p.byteLength, 0),
      gradients: this.shardGrads.reduce((a, g) => a + g.byteLength, 0),
      optimizer: optimizerBytes,
      // reduce buckets in flight are communication buffers, not model states (as stage 1's staging)
      communication: this.reducer.bufferBytes,
      stepWorkspace: this.workspaceBytes,
    };
    if (this.half) {
      report.masterWeights = this.half.masterBytes;
      report.materializedParameters = this.half.materializedBytes;
    }
    return report;
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
