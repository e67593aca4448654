/**
 * Builds an optimizer from DeepSpeed's `optimizer` config section (`{"type": ..., "params": {...}}`),
 * with the mapping of DeepSpeed's engine (`_configure_basic_optimizer`):
 * - `Adam` and `AdamW` use FusedAdam; `adam_w_mode` (default true) picks decoupled weight decay, and `AdamW`
 *   forces it. `torch_adam: true` selects torch.optim.Adam/AdamW, whose only difference that matters here is
 *   torch AdamW's default weight_decay of 0.01.
 * - `Lamb` is FusedLamb, `SGD` is torch.optim.SGD.
 * - `max_grad_norm` is rejected, as DeepSpeed does: gradient clipping is the top-level `gradient_clipping`.
 * The type is matched case-insensitively (DeepSpeed lower-cases its own optimizer names too).
 *
 * Keys, rules and defaults are those of the config schema (config/sections/optimizer.ts): the params are
 * validated by the same code whether they come from a config file or from a direct call.
 */
import { resolveOptimizerSection } from '../config/sections/optimizer.js';
import { Adam, AdamW } from './adam.js';
import { Lamb } from './lamb.js';
import { SGD } from './sgd.js';
import type { FlatOptimizer, ParamGroupOptions } from './types.js';

/** The optimizer types createOptimizer understands, as DeepSpeed spells them. */
export { OPTIMIZER_TYPES } from '../config/sections/optimizer.js';

/**
 * Creates the optimizer a DeepSpeed `optimizer` section describes.
 *
 * @param type `Adam`, `AdamW`, `SGD` or `Lamb` (any case)
 * @param params the section's `params`; missing keys take DeepSpeed's defaults (FusedAdam: lr 1e-3,
 *   betas [0.9, 0.999], eps 1e-8, weight_decay 0, bias_correction true, adam_w_mode true)
 * @param groups per-group overrides, e.g. from buildParamGroups; empty means one group
 * @throws ConfigError for an unknown type or key, or an invalid value
 */
export function createOptimizer(
  type: string,
  params: Record<string, unknown> = {},
  groups: Partial<ParamGroupOptions>[] = [],
): FlatOptimizer {
  const section = resolveOptimizerSection(type, params);
  switch (section.type) {
    case 'Adam':
    case 'AdamW': {
      const { lr, betas, eps, weight_decay, bias_correction, adam_w_mode } = section.params;
      const options = { lr, betas, eps, weight_decay, bias_correction };
      // The schema has already made adam_w_mode the effective mode (always true for AdamW).
      return section.type === 'AdamW' ? new AdamW(groups, options) : new Adam(groups, { ...options, adam_w_mode });
    }
    case 'Lamb': {
      const { lr, betas, eps, weight_decay, bias_correction, max_coeff, min_coeff, eps_inside_sqrt } = section.params;
      return new Lamb(groups, { lr, betas, eps, weight_decay, bias_correction, max_coeff, min_coeff, eps_inside_sqrt });
    }
    case 'SGD': {
      const { lr, momentum, dampening, weight_decay, nesterov } = section.params;
      return new SGD(groups, { lr, momentum, dampening, weight_decay, nesterov });
    }
  }
}
