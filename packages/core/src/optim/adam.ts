/**
 * Adam and AdamW on flat fp32 buffers, with the update of torch.optim.Adam/AdamW and DeepSpeed's FusedAdam:
 *
 *   g  = grad (+ weight_decay * p when adam_w_mode is false: L2 added to the gradient)
 *   m  = beta1 * m + (1 - beta1) * g
 *   v  = beta2 * v + (1 - beta2) * g^2
 *   p  = p * (1 - lr * weight_decay)   (only when adam_w_mode is true: decoupled decay)
 *   p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps),   bc_k = 1 - beta_k^step (1 without bias_correction)
 */
import { flatKernels } from './flat-kernels.js';
import { scaleFlat } from './flat-loops.js';
import { type FlatGroupState, FlatOptimizerBase } from './flat-optimizer.js';
import { resolveParamGroups } from './group-options.js';
import type { FlatGroupBuffers, ParamGroupOptions } from './types.js';

/** Defaults of DeepSpeed's FusedAdam (which equal torch.optim.Adam's, and AdamW's except weight_decay 0). */
export const ADAM_DEFAULTS = {
  lr: 1e-3,
  betas: [0.9, 0.999] as [number, number],
  eps: 1e-8,
  weight_decay: 0,
  bias_correction: true,
} as const;

/** Optimizer-wide options of Adam; group options given here become the defaults of every group. */
export interface AdamOptions extends Partial<ParamGroupOptions> {
  /** true: decoupled weight decay (AdamW); false: L2 added to the gradient. DeepSpeed's default is true. */
  adam_w_mode?: boolean;
}

/** The Adam update of one flat group; shared with AdamW. Plain loop, no allocation. */
function adamUpdate(
  group: ParamGroupOptions,
  step: number,
  decoupled: boolean,
  params: Float32Array,
  grads: Float32Array,
  expAvg: Float32Array,
  expAvgSq: Float32Array,
  gradScale: number,
): void {
  const lr = group.lr;
  const wd = group.weight_decay;
  const betas = group.betas ?? ADAM_DEFAULTS.betas;
  const beta1 = betas[0];
  const beta2 = betas[1];
  const eps = group.eps ?? ADAM_DEFAULTS.eps;
  const biasCorrection = group.bias_correction ?? true;
  const native = flatKernels();
  if (native) {
    // kernels that predate gradScale get the gradients scaled in place (the same bits)
    const fused = native.adamGradScale === true;
    if (gradScale !== 1 && !fused) scaleFlat(grads, gradScale);
    const gs = fused ? gradScale : 1;
    native.adam(params, grads, expAvg, expAvgSq, lr, beta1, beta2, eps, wd, step, decoupled, biasCorrection, gs);
    return;
  }
  const bc1 = biasCorrection ? 1 - beta1 ** step : 1;
  const bc2 = biasCorrection ? 1 - beta2 ** step : 1;
  const stepSize = lr / bc1;
  const bc2Sqrt = Math.sqrt(bc2);
  const l2 = decoupled ? 0 : wd;
  const keep = decoupled ? 1 - lr * wd : 1;
  const oneMinusBeta1 = 1 - beta1;
  const oneMinusBeta2 = 1 - beta2;
  const n = params.length;
  for (let i = 0; i < n; i++) {
    const p = params[i];
    // fround(grad * gradScale) is the clipped gradient the owner would have stored (x * 1 is exact)
    const g = Math.fround(grads[i] * gradScale) + l2 * p;
    // Rounded to fp32 before use, as torch uses the stored moments: keeps results within an ulp of torch's.
    const m = Math.fround(beta1 * expAvg[i] + oneMinusBeta1 * g);
    const v = Math.fround(beta2 * expAvgSq[i] + oneMinusBeta2 * g * g);
    expAvg[i] = m;
    expAvgSq[i] = v;
    params[i] = p * keep - (stepSize * m) / (Math.sqrt(v) / bc2Sqrt + eps);
  }
}

/**
 * Adam (DeepSpeed's `"type": "Adam"`). With `adam_w_mode` true (DeepSpeed's default) weight decay is
 * decoupled, i.e. this is AdamW; with false it is torch.optim.Adam's L2 penalty.
 */
export class Adam extends FlatOptimizerBase {
  readonly type: string = 'Adam';
  /** Decoupled weight decay (AdamW) when true. */
  readonly adamWMode: boolean;
  protected readonly requiredBuffers = ['exp_avg', 'exp_avg_sq'] as const;
  protected override readonly appliesGradScale: boolean = true;

  /**
   * @param groups per-group overrides (empty: one group of the defaults)
   * @param options defaults for every group, plus `adam_w_mode` (default true, as DeepSpeed)
   */
  constructor(groups: Partial<ParamGroupOptions>[] = [], options: AdamOptions = {}) {
    const { adam_w_mode, ...groupDefaults } = options;
    super(resolveParamGroups(groups, { ...ADAM_DEFAULTS, ...groupDefaults }, 'optimizer'));
    this.adamWMode = adam_w_mode ?? true;
  }

  protected updateGroup(index: number, group: ParamGroupOptions, state: FlatGroupState, b: FlatGroupBuffers): void {
    const n = b.params.length;
    const expAvg = this.stateBuffer(index, 'exp_avg', n);
    const expAvgSq = this.stateBuffer(index, 'exp_avg_sq', n);
    adamUpdate(group, state.step, this.adamWMode, b.params, b.grads, expAvg, expAvgSq, b.gradScale ?? 1);
  }
}

/** AdamW: Adam with decoupled weight decay, always (DeepSpeed's `"type": "AdamW"` ignores adam_w_mode). */
export class AdamW extends Adam {
  override readonly type: string = 'AdamW';

  constructor(groups: Partial<ParamGroupOptions>[] = [], options: Omit<AdamOptions, 'adam_w_mode'> = {}) {
    super(groups, { ...options, adam_w_mode: true });
  }
}
