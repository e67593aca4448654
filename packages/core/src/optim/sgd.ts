/**
 * SGD with momentum, dampening, Nesterov and L2 weight decay, exactly as torch.optim.SGD:
 *
 *   d = grad + weight_decay * p
 *   if momentum != 0:
 *     buf = d                                         (first step with momentum: no dampening)
 *     buf = momentum * buf + (1 - dampening) * d      (later steps)
 *     d   = nesterov ? d + momentum * buf : buf
 *   p -= lr * d
 */
import { flatKernels } from './flat-kernels.js';
import { type FlatGroupState, FlatOptimizerBase } from './flat-optimizer.js';
import { resolveParamGroups } from './group-options.js';
import type { FlatGroupBuffers, ParamGroupOptions } from './types.js';

/** torch.optim.SGD's defaults. */
export const SGD_DEFAULTS = {
  lr: 1e-3,
  momentum: 0,
  dampening: 0,
  weight_decay: 0,
  nesterov: false,
} as const;

/** SGD over flat buffers. State: `momentum_buffer`, created on the first step whose momentum is non-zero. */
export class SGD extends FlatOptimizerBase {
  readonly type = 'SGD';
  protected readonly requiredBuffers = [] as const;
  protected override readonly optionalBuffers = ['momentum_buffer'] as const;

  /**
   * @param groups per-group overrides (empty: one group of the defaults)
   * @param defaults defaults for every group (torch's when omitted)
   */
  constructor(groups: Partial<ParamGroupOptions>[] = [], defaults: Partial<ParamGroupOptions> = {}) {
    super(resolveParamGroups(groups, { ...SGD_DEFAULTS, ...defaults }, 'optimizer'));
  }

  protected updateGroup(index: number, group: ParamGroupOptions, _state: FlatGroupState, b: FlatGroupBuffers): void {
    const params = b.params;
    const grads = b.grads;
    const n = params.length;
    const lr = group.lr;
    const wd = group.weight_decay;
    const momentum = group.momentum ?? 0;
    const native = flatKernels();
    if (momentum === 0) {
      if (native) {
        native.sgd(params, grads, null, lr, 0, 0, wd, false, false);
        return;
      }
      for (let i = 0; i < n; i++) params[i] -= lr * (grads[i] + wd * params[i]);
      return;
    }
    const fresh = this.groupStates[index].buffers.momentum_buffer === undefined;
    const buf = this.stateBuffer(index, 'momentum_buffer', n);
    const nesterov = group.nesterov ?? false;
    if (native) {
      native.sgd(params, grads, buf, lr, momentum, group.dampening ?? 0, wd, nesterov, fresh);
      return;
    }
    const dampFactor = 1 - (group.dampening ?? 0);
    for (let i = 0; i < n; i++) {
      const d = grads[i] + wd * params[i];
      // torch stores the buffer in the param's dtype, so the Nesterov term reads the rounded fp32 value.
      buf[i] = fresh ? d : momentum * buf[i] + dampFactor * d;
      params[i] -= lr * (nesterov ? d + momentum * buf[i] : buf[i]);
    }
  }
}
