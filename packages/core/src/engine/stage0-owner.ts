import type { ProcessGroup } from '../comm/types.js';
import { ZeroFlowError } from '../errors.js';
import type { Parameter } from '../nn/parameter.js';
import { acceptsGradScale } from '../optim/flat-optimizer.js';
import { type FlatOptimizer, optimizerStateBytes } from '../optim/types.js';
import type { GradientOwner, OwnerState, PluginContext, StepOutcome, ZeroFlowPlugin } from '../plugin.js';
import { CORE_VERSION } from '../version.js';
import { unscaleAndClip } from '../zero/collectives.js';
import { type FlatGroup, layoutFlatGroups, segmentsOf } from './flat-params.js';
import { allReduceRange, GradientBuckets } from './grad-buckets.js';
import {
  asFloat32,
  dtypeOpts,
  FlatGradients,
  type HalfFlatParameters,
  ownerParameters,
  wholeGroup,
} from './half-params.js';
import { type MixedPrecisionLayout, mixedPrecisionLayout } from './mixed-precision.js';

/**
 * Stage 0 (no ZeRO, DeepSpeed's data parallelism): every rank keeps full parameters, gradients and optimizer
 * state. Gradients are accumulated into one flat buffer per param group as backward produces them; in the
 * backward that ends an accumulation window they are all-reduced in buckets (`reduce_bucket_size`) as soon
 * as each bucket is complete, overlapping the rest of backward. At the step they are averaged, clipped and
 * stepped. Initial parameters are broadcast from rank 0.
 *
 * With the `amp` service (fp16/bf16), the parameters are a 16-bit flat buffer (2Ψ) that the forward pass
 * widens per leaf, the fp32 master weights (4Ψ) are the optimizer's, gradients accumulate and are
 * all-reduced in 16 bits (2Ψ; fp32 with `data_types.grad_accum_dtype: "fp32"`): 16Ψ with Adam's 8Ψ.
 */
export class Stage0Owner implements GradientOwner {
  private readonly groups: FlatGroup[];
  /** fp32 parameters the model's tensors view (fp32 training), or null under amp. */
  private readonly params: Float32Array[] | null;
  private readonly half: HalfFlatParameters | null;
  private readonly mp: MixedPrecisionLayout | null;
  /** Gradient accumulation buffers, zeroed lazily (shared memory: the tcp backend reduces them in place). */
  private readonly grads: FlatGradients;
  private readonly comm: ProcessGroup | null;
  private readonly buckets: GradientBuckets | null;
  private workspaceBytes = 0;

  constructor(
    private readonly ctx: PluginContext,
    private readonly optimizer: FlatOptimizer,
    groupNames: readonly { names: string[] }[],
  ) {
    this.groups = layoutFlatGroups(ctx.parameters, groupNames);
    const dp = ctx.world.dataParallelSize;
    this.mp = mixedPrecisionLayout(ctx, '@zeroflow/core:stage0');
    const mp = this.mp;
    ({ params: this.params, half: this.half } = ownerParameters(mp, this.groups, this.groups.map(wholeGroup), dp));
    this.grads = new FlatGradients(this.groups, mp?.gradFormat);
    this.comm = dp > 1 ? (ctx.service<ProcessGroup>('comm') ?? null) : null;
    if (dp > 1 && !this.comm) {
      throw new ZeroFlowError(
        `data_parallel_size is ${dp} but no plugin provides the "comm" service: add a comm backend`,
      );
    }
    const comm = this.comm;
    const bucketElements = Math.max(1, Math.floor(Number(ctx.config.zero_optimization?.reduce_bucket_size ?? 5e8)));
    const gradFormat = mp?.gradFormat ?? 'bf16';
    this.buckets = comm
      ? new GradientBuckets(this.groups, bucketElements, (g, a, b) =>
          allReduceRange(comm, this.grads.buffers[g], a, b, dtypeOpts(this.grads.buffers[g], gradFormat)),
        )
      : null;
  }

  async init(): Promise<void> {
    // Every rank starts from rank 0's weights, whatever its own initialization drew.
    if (!this.comm) return;
    if (this.half) await this.half.broadcastInitial(this.comm);
    else for (const p of this.params!) await this.comm.broadcast(p, 0).promise;
  }

  beforeBackward(info: { boundary: boolean }): void {
    // weights changed through Parameter.tensor (param.load, a plugin) reach the 16-bit copy before forward
    this.half?.sync();
    if (info.boundary && this.buckets) {
      // buckets are reduced while this backward runs: slices no gradient reaches must be zeros by then
      this.grads.settle();
      this.buckets.begin();
    }
  }

  onUse(param: Parameter): void {
    this.buckets?.onUse(param);
  }

  onGrad(param: Parameter, g: Float32Array): void {
    if (!this.grads.add(param, g)) throw new ZeroFlowError(`gradient for unknown parameter "${param.name}"`);
    this.buckets?.onGrad(param);
  }

  afterBackward(): void {
    this.buckets?.flush();
  }

  async step(opts: { unscale: number; clipNorm: number; skip?: (gradNorm: number) => boolean }): Promise<StepOutcome> {
    const dp = this.ctx.world.dataParallelSize;
    this.half?.sync();
    this.buckets?.waitAll();
    this.grads.settle();
    // 16-bit gradients are unscaled, clipped and stepped in fp32: a transient workspace, as DeepSpeed's
    // fp32 copy of the flat 16-bit gradients
    const grads = this.grads.buffers.map((g) => asFloat32(g, this.mp?.gradFormat ?? 'bf16'));
    this.workspaceBytes = grads.reduce((a, g, i) => a + (g === this.grads.buffers[i] ? 0 : g.byteLength), 0);
    // the all-reduced gradients are whole on every rank: the norm is local
    // clipping is deferred to the optimizer's update when it takes a gradScale (one pass less)
    const deferClip = acceptsGradScale(this.optimizer);
    const { gradNorm, skipped, clipScale } = unscaleAndClip(grads, null, {
      ...opts,
      divisor: opts.unscale * dp,
      deferClip,
    });
    if (skipped) {
      this.zeroGrad();
      return { gradNorm, skipped };
    }
    const params = this.half ? this.half.master : this.params!;
    this.optimizer.step(
      this.groups.map((grp, i) => ({
        params: params[i],
        grads: grads[i],
        segments: segmentsOf(grp),
        gradScale: clipScale,
      })),
    );
    this.half?.narrowMasters();
    this.zeroGrad();
    return { gradNorm, skipped: false };
  }

  zeroGrad(): void {
    this.half?.sync();
    this.grads.zero();
  }

  /** Frees `Parameter.tensor` snapshots still held under amp (`engine.close()`). */
  dispose(): void {
    this.half?.dispose();
  }

  /** Under amp: the fp32 master weights by name (checkpoints hold masters, not their 16-bit rounding). */
  async fullParameters(): Promise<Record<string, Float32Array>> {
    if (!this.half) return {};
    this.half.sync();
    return this.half.byName(this.half.master);
  }

  async stateDict(): Promise<OwnerState> {
    this.half?.sync();
    const sd = this.optimizer.stateDict();
    const tensors: OwnerState['tensors'] = {};
    sd.groups.forEach((g, i) => {
      for (const [k, v] of Object.entries(g.buffers))
        tensors[`optimizer.group${i}.${k}`] = { shape: [v.length], data: v };
    });
    // Stage 0 state is the same on every rank: rank 0's copy serves any world size and stage.
    const meta = {
      replicated: true,
      type: sd.type,
      groups: sd.groups.map((g) => ({ options: g.options, step: g.step, buffers: Object.keys(g.buffers) })),
    };
    return { tensors, meta };
  }

  async loadStateDict(state: OwnerState): Promise<void> {
    this.half?.sync();
    const meta = state.meta as { type: string; groups: { options: never; step: number; buffers: string[] }[] };
    this.optimizer.loadStateDict({
      type: meta.type,
      groups: meta.groups.map((g, i) => ({
        options: g.options,
        step: g.step,
        buffers: Object.fromEntries(
          g.buffers.map((k) => {
            const t = state.tensors[`optimizer.group${i}.${k}`];
            if (!t) throw new ZeroFlowError(`optimizer state is missing optimizer.group${i}.${k}`);
            return [k, t.data];
          }),
        ),
      })),
    });
  }

  /**
   * Bytes held by this rank: `parameters` (fp32, or 16-bit under amp), `masterWeights` (amp: fp32 masters),
   * `gradients`, `optimizer`; `stepWorkspace` the transient fp32 gradients of the last amp step and
   * `materializedParameters` fp32 copies read through `Parameter.tensor` since the last step (not model states).
   */
  memoryReport(): Record<string, number> {
    const optimizerBytes = optimizerStateBytes(this.optimizer);
    const report: Record<string, number> = {
      parameters: this.half ? this.half.halfBytes : this.params!.reduce((a, p) => a + p.byteLength, 0),
      gradients: this.grads.buffers.reduce((a, g) => a + g.byteLength, 0),
      optimizer: optimizerBytes,
    };
    if (this.half) {
      report.masterWeights = this.half.masterBytes;
      report.stepWorkspace = this.workspaceBytes;
      report.materializedParameters = this.half.materializedBytes;
    }
    return report;
  }
}

/** Core's built-in owner of gradient reduction and the optimizer step when no ZeRO stage is configured. */
export function stage0Plugin(): ZeroFlowPlugin {
  return {
    name: '@zeroflow/core:stage0',
    version: CORE_VERSION,
    coreVersion: `^${CORE_VERSION}`,
    provides: ['optimizer-step'],
    createGradientOwner: (ctx, optimizer) => new Stage0Owner(ctx, optimizer, ctx.paramGroups),
  };
}
