import {
  acceptsGradScale,
  addInto,
  allGatherContiguous,
  asFloat32,
  checkZeroStageConfig,
  chunkPerRank,
  contiguousShardView,
  dataParallelGroup,
  dtypeOpts,
  type FlatBuffer,
  type FlatGroup,
  type FlatOptimizer,
  type GradientOwner,
  type GroupPartition,
  type HalfFlatParameters,
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
  partitionContiguous,
  reduceScatterContiguous,
  StagingBuffers,
  type StepOutcome,
  shardedStateDict,
  shardSegments,
  sharedFloat32,
  sharedUint16,
  unscaleAndClip,
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
 *
 * With the `amp` service (fp16/bf16): the full parameters are 16-bit (2Ψ), the full gradient accumulation
 * buffer is 16-bit (2Ψ; fp32 with `data_types.grad_accum_dtype: "fp32"`), and the fp32 master weights exist
 * for this rank's slice only, beside Adam's moments (12Ψ/N): 4Ψ + 12Ψ/N. Both collectives move 16-bit data.
 */
export class Stage1Owner implements GradientOwner {
  private readonly settings: ZeroStageSettings;
  private readonly comm: ProcessGroup | null;
  private readonly groups: FlatGroup[];
  /** fp32 parameters (fp32 training) or null under amp. */
  private readonly params: Float32Array[] | null;
  private readonly half: HalfFlatParameters | null;
  private readonly mp: MixedPrecisionLayout | null;
  private readonly grads: FlatBuffer[];
  private readonly partitions: GroupPartition[];
  private readonly where = new Map<Parameter, { group: number; offset: number; size: number }>();
  private readonly reduceStaging: StagingBuffers<FlatBuffer>;
  private readonly gatherStaging: StagingBuffers<FlatBuffer>;
  private readonly seen = new Set<Parameter>();
  private workspaceBytes = 0;

  constructor(
    private readonly ctx: PluginContext,
    private readonly optimizer: FlatOptimizer,
  ) {
    this.settings = checkZeroStageConfig(ctx.config, 1, PACKAGE_NAME, optimizer);
    const dp = ctx.world.dataParallelSize;
    this.comm = dataParallelGroup(ctx.service<ProcessGroup>('comm'), dp, PACKAGE_NAME);
    const rank = this.comm?.rank ?? 0;
    this.groups = layoutFlatGroups(ctx.parameters, ctx.paramGroups, dp);
    this.partitions = this.groups.map((g) => partitionContiguous(g, dp, rank));
    const mp = mixedPrecisionLayout(ctx, PACKAGE_NAME);
    this.mp = mp;
    const shards = this.partitions.map((p) => ({ size: p.shardSize, ranges: p.ranges }));
    ({ params: this.params, half: this.half } = ownerParameters(mp, this.groups, shards, dp));
    this.grads = this.groups.map((g) => (mp?.gradFormat ? sharedUint16(g.paddedSize) : sharedFloat32(g.paddedSize)));
    this.groups.forEach((g, i) => {
      for (const e of g.entries) this.where.set(e.param, { group: i, offset: e.offset, size: e.size });
    });
    const maxShard = Math.max(1, ...this.partitions.map((p) => p.shardSize));
    const chunk = (bucket: number) => chunkPerRank(bucket, dp, maxShard) * dp;
    const make = (half: boolean) => (half ? sharedUint16 : sharedFloat32) as (n: number) => FlatBuffer;
    this.reduceStaging = new StagingBuffers(chunk(this.settings.reduceBucketSize), make(!!mp?.gradFormat));
    this.gatherStaging = new StagingBuffers(chunk(this.settings.allgatherBucketSize), make(!!mp));
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
  }

  onGrad(param: Parameter, g: Float32Array): void {
    const w = this.where.get(param);
    if (!w) throw new ZeroFlowError(`gradient for unknown parameter "${param.name}"`);
    // the first gradient of a window is copied over the slice's stale values (zeroGrad skips the fill)
    addInto(this.grads[w.group], w.offset, g, 0, w.size, this.gradFormat, !this.seen.has(param));
    this.seen.add(param);
  }

  async step(opts: { unscale: number; clipNorm: number; skip?: (gradNorm: number) => boolean }): Promise<StepOutcome> {
    this.checkUnused();
    this.half?.sync();
    this.zeroUnseen();
    const dp = this.ctx.world.dataParallelSize;
    const comm = this.comm;
    if (comm) {
      this.partitions.forEach((p, i) => {
        const chunk = chunkPerRank(this.settings.reduceBucketSize, dp, p.shardSize);
        const g = this.grads[i];
        reduceScatterContiguous(
          comm,
          p,
          g,
          chunk,
          this.reduceStaging,
          this.settings.reduceScatter,
          dtypeOpts(g, this.gradFormat),
        );
      });
    }
    // 16-bit gradient shards are unscaled, clipped and stepped in fp32 (a transient copy of the shard)
    const shardGrads = this.partitions.map((p, i) => {
      const view = this.grads[i].subarray(p.rank * p.shardSize, (p.rank + 1) * p.shardSize);
      return asFloat32(view, this.gradFormat);
    });
    this.workspaceBytes = this.mp?.gradFormat ? shardGrads.reduce((a, g) => a + g.byteLength, 0) : 0;
    // clipping is deferred to the optimizer's update when it takes a gradScale (one pass less)
    const { gradNorm, skipped, clipScale } = unscaleAndClip(shardGrads, comm, {
      ...opts,
      divisor: opts.unscale * dp,
      deferClip: acceptsGradScale(this.optimizer),
    });
    if (skipped) {
      this.zeroGrad();
      return { gradNorm, skipped };
    }
    this.optimizer.step(
      this.partitions.map((p, i) => ({
        params: this.half ? this.half.master[i] : contiguousShardView(p, this.params![i]),
        grads: shardGrads[i],
        segments: shardSegments(p),
        gradScale: clipScale,
      })),
    );
    this.half?.narrowMasters();
    if (comm) {
      this.partitions.forEach((p, i) => {
        const chunk = chunkPerRank(this.settings.allgatherBucketSize, dp, p.shardSize);
        const flat: FlatBuffer = this.half ? this.half.flat[i] : this.params![i];
        const opts = dtypeOpts(flat, this.mp?.format ?? 'bf16');
        allGatherContiguous(comm, p, flat, chunk, this.gatherStaging, !this.settings.allgatherPartitions, opts);
      });
    }
    this.zeroGrad();
    return { gradNorm, skipped: false };
  }

  zeroGrad(): void {
    this.half?.sync();
    // lazily: a parameter's first gradient overwrites its slice, zeroUnseen clears the rest before the step
    // reads them; the padding is never written and stays zero
    this.seen.clear();
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
    const full = this.groups.map((g) => sharedFloat32(g.paddedSize));
    half.mastersInto(full);
    const comm = this.comm;
    if (comm) {
      const staging = new StagingBuffers(
        chunkPerRank(
          this.settings.allgatherBucketSize,
          comm.size,
          Math.max(1, ...this.partitions.map((p) => p.shardSize)),
        ) * comm.size,
      );
      this.partitions.forEach((p, i) =>
        allGatherContiguous(
          comm,
          p,
          full[i],
          chunkPerRank(this.settings.allgatherBucketSize, comm.size, p.shardSize),
          staging,
        ),
      );
    }
    return half.byName(full);
  }

  async stateDict(): Promise<OwnerState> {
    this.half?.sync();
    return shardedStateDict(this.optimizer, this.partitions, 1);
  }

  async loadStateDict(state: OwnerState): Promise<void> {
    this.half?.sync();
    loadShardedStateDict(this.optimizer, this.partitions, 1, state);
  }

  /**
   * Bytes held by this rank: `parameters` (fp32, or 16-bit under amp), `masterWeights` (amp: this rank's fp32
   * slice), `gradients` (the full accumulation buffer), `optimizer`, `communication` (staging); under amp
   * `stepWorkspace` (transient fp32 gradient shard) and `materializedParameters` (Parameter.tensor copies).
   */
  memoryReport(): Record<string, number> {
    const optimizerBytes = optimizerStateBytes(this.optimizer);
    const report: Record<string, number> = {
      parameters: this.half ? this.half.halfBytes : this.params!.reduce((a, p) => a + p.byteLength, 0),
      gradients: this.grads.reduce((a, g) => a + g.byteLength, 0),
      optimizer: optimizerBytes,
      communication: this.reduceStaging.bytes + this.gatherStaging.bytes,
    };
    if (this.half) {
      report.masterWeights = this.half.masterBytes;
      report.stepWorkspace = this.workspaceBytes;
      report.materializedParameters = this.half.materializedBytes;
    }
    return report;
  }

  private get gradFormat() {
    return this.mp?.gradFormat ?? 'bf16';
  }

  /** Zeroes the slices of parameters that got no gradient since zeroGrad (they hold stale values). */
  private zeroUnseen(): void {
    if (this.seen.size === this.where.size) return;
    for (const [p, w] of this.where) if (!this.seen.has(p)) this.grads[w.group].fill(0, w.offset, w.offset + w.size);
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
