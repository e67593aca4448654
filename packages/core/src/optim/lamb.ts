/**
 * LAMB with the semantics of DeepSpeed's FusedLamb kernel (csrc/lamb), applied per tensor (per segment):
 *
 *   m = beta1 * m + (1 - beta1) * g
 *   v = beta2 * v + (1 - beta2) * g^2
 *   u = m / (sqrt(v) + eps) + weight_decay * p        (eps_inside_sqrt: m / sqrt(v + eps))
 *   trust = ||p|| / ||u||, clamped to [min_coeff, max_coeff]; 1 when either norm is 0
 *   p -= lr * sqrt(bc2) / bc1 * trust * u             (bc_k = 1 - beta_k^step; lr alone without bias_correction)
 *
 * Unlike Adam, the bias correction folds into the step size, so eps is added to the uncorrected sqrt(v).
 * The norms are over whole tensors: each segment must be a complete tensor (a ZeRO partition that splits a
 * tensor would need its partial norms all-reduced first, which DeepSpeed's Lamb does not support either).
 */
import { ZeroFlowError } from '../errors.js';
import { type FlatGroupState, FlatOptimizerBase } from './flat-optimizer.js';
import { resolveParamGroups } from './group-options.js';
import type { FlatGroupBuffers, FlatSegment, ParamGroupOptions } from './types.js';

/** Defaults of DeepSpeed's FusedLamb. */
export const LAMB_DEFAULTS = {
  lr: 1e-3,
  betas: [0.9, 0.999] as [number, number],
  eps: 1e-8,
  weight_decay: 0,
  bias_correction: true,
  max_coeff: 10.0,
  min_coeff: 0.01,
} as const;

/** Optimizer-wide options of Lamb; group options given here become the defaults of every group. */
export interface LambOptions extends Partial<ParamGroupOptions> {
  /** Add eps under the square root (DeepSpeed's `eps_inside_sqrt`, default false). */
  eps_inside_sqrt?: boolean;
}

/** LAMB (DeepSpeed's `"type": "Lamb"`), one trust ratio per segment of each flat group. */
export class Lamb extends FlatOptimizerBase {
  readonly type = 'Lamb';
  readonly epsInsideSqrt: boolean;
  protected readonly requiredBuffers = ['exp_avg', 'exp_avg_sq'] as const;
  /** Trust ratios of the last step, per group and segment (DeepSpeed's `get_lamb_coeffs`). */
  private readonly lastCoeffs: Float64Array[];

  /**
   * @param groups per-group overrides (empty: one group of the defaults)
   * @param options defaults for every group, plus `eps_inside_sqrt`
   */
  constructor(groups: Partial<ParamGroupOptions>[] = [], options: LambOptions = {}) {
    const { eps_inside_sqrt, ...groupDefaults } = options;
    super(resolveParamGroups(groups, { ...LAMB_DEFAULTS, ...groupDefaults }, 'optimizer'));
    this.epsInsideSqrt = eps_inside_sqrt ?? false;
    this.lastCoeffs = this.paramGroups.map(() => new Float64Array(0));
  }

  /** The clamped trust ratio each segment used in the last step, per group. */
  getLambCoeffs(): number[][] {
    return this.lastCoeffs.map((c) => Array.from(c));
  }

  protected updateGroup(index: number, group: ParamGroupOptions, state: FlatGroupState, b: FlatGroupBuffers): void {
    const n = b.params.length;
    const expAvg = this.stateBuffer(index, 'exp_avg', n);
    const expAvgSq = this.stateBuffer(index, 'exp_avg_sq', n);
    const segments = b.segments;
    const count = segments ? segments.length : 1;
    if (segments) checkSegments(segments, n, index);
    if (this.lastCoeffs[index].length !== count) this.lastCoeffs[index] = new Float64Array(count);
    const coeffs = this.lastCoeffs[index];

    const betas = group.betas ?? LAMB_DEFAULTS.betas;
    const step = state.step;
    const biasCorrection = group.bias_correction ?? true;
    const stepSize = biasCorrection ? (group.lr * Math.sqrt(1 - betas[1] ** step)) / (1 - betas[0] ** step) : group.lr;
    for (let s = 0; s < count; s++) {
      const start = segments ? segments[s].offset : 0;
      const end = segments ? start + segments[s].length : n;
      coeffs[s] = this.updateSegment(group, stepSize, b.params, b.grads, expAvg, expAvgSq, start, end);
    }
  }

  /** Two passes like the CUDA kernel: moments and norms, then the scaled update. Returns the trust ratio. */
  private updateSegment(
    group: ParamGroupOptions,
    stepSize: number,
    params: Float32Array,
    grads: Float32Array,
    expAvg: Float32Array,
    expAvgSq: Float32Array,
    start: number,
    end: number,
  ): number {
    const betas = group.betas ?? LAMB_DEFAULTS.betas;
    const beta1 = betas[0];
    const beta2 = betas[1];
    const eps = group.eps ?? LAMB_DEFAULTS.eps;
    const decay = group.weight_decay;
    const inside = this.epsInsideSqrt;
    let weightSq = 0;
    let updateSq = 0;
    for (let i = start; i < end; i++) {
      const g = grads[i];
      const p = params[i];
      // Rounded to fp32 so that both passes see the same stored moments.
      const m = Math.fround(beta1 * expAvg[i] + (1 - beta1) * g);
      const v = Math.fround(beta2 * expAvgSq[i] + (1 - beta2) * g * g);
      expAvg[i] = m;
      expAvgSq[i] = v;
      const u = m / (inside ? Math.sqrt(v + eps) : Math.sqrt(v) + eps) + decay * p;
      updateSq += u * u;
      weightSq += p * p;
    }
    const weightNorm = Math.sqrt(weightSq);
    const updateNorm = Math.sqrt(updateSq);
    let coeff = 1;
    if (weightNorm !== 0 && updateNorm !== 0) {
      const maxCoeff = group.max_coeff ?? LAMB_DEFAULTS.max_coeff;
      const minCoeff = group.min_coeff ?? LAMB_DEFAULTS.min_coeff;
      coeff = Math.min(maxCoeff, Math.max(minCoeff, weightNorm / updateNorm));
    }
    const scale = stepSize * coeff;
    for (let i = start; i < end; i++) {
      const p = params[i];
      // Recomputed from the stored fp32 moments, as the kernel's second pass does.
      const v = expAvgSq[i];
      const u = expAvg[i] / (inside ? Math.sqrt(v + eps) : Math.sqrt(v) + eps) + decay * p;
      params[i] = p - scale * u;
    }
    return coeff;
  }
}

function checkSegments(segments: FlatSegment[], length: number, group: number): void {
  let offset = 0;
  for (const s of segments) {
    if (s.offset !== offset || s.length < 0) {
      throw new ZeroFlowError(
        `Lamb: group ${group} segment "${s.name}" starts at ${s.offset} (length ${s.length}), expected ${offset}; ` +
          'segments must cover the flat buffer in order without gaps or overlaps.',
      );
    }
    offset += s.length;
  }
  if (offset !== length) {
    throw new ZeroFlowError(
      `Lamb: group ${group} segments cover ${offset} elements but the buffer has ${length}; ` +
        'each segment must be one whole tensor of the group.',
    );
  }
}
