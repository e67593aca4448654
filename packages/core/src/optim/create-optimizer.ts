/**
 * Builds an optimizer from DeepSpeed's `optimizer` config section (`{"type": ..., "params": {...}}`),
 * with the mapping of DeepSpeed's engine (`_configure_basic_optimizer`):
 * - `Adam` and `AdamW` use FusedAdam; `adam_w_mode` (default true) picks decoupled weight decay, and `AdamW`
 *   forces it. `torch_adam: true` selects torch.optim.Adam/AdamW, whose only difference that matters here is
 *   torch AdamW's default weight_decay of 0.01.
 * - `Lamb` is FusedLamb, `SGD` is torch.optim.SGD.
 * - `max_grad_norm` is rejected, as DeepSpeed does: gradient clipping is the top-level `gradient_clipping`.
 * The type is matched case-insensitively (DeepSpeed lower-cases its own optimizer names too).
 */
import { ConfigError } from '../errors.js';
import { ADAM_DEFAULTS, Adam, AdamW } from './adam.js';
import { ConfigReader, closestName } from './config-reader.js';
import { LAMB_DEFAULTS, Lamb } from './lamb.js';
import { SGD, SGD_DEFAULTS } from './sgd.js';
import type { FlatOptimizer, ParamGroupOptions } from './types.js';

/** The optimizer types createOptimizer understands, as DeepSpeed spells them. */
export const OPTIMIZER_TYPES = ['Adam', 'AdamW', 'SGD', 'Lamb'] as const;

const PATH = 'optimizer.params';
const ADAM_KEYS = ['lr', 'betas', 'eps', 'weight_decay', 'bias_correction', 'adam_w_mode', 'torch_adam', 'amsgrad'];
const LAMB_KEYS = [
  'lr',
  'betas',
  'eps',
  'weight_decay',
  'bias_correction',
  'eps_inside_sqrt',
  'max_coeff',
  'min_coeff',
  'amsgrad',
];
const SGD_KEYS = ['lr', 'momentum', 'dampening', 'weight_decay', 'nesterov', 'maximize'];
/** torch.optim.AdamW's default weight decay, used only with `torch_adam: true`. */
const TORCH_ADAMW_WEIGHT_DECAY = 0.01;

function readerFor(params: Record<string, unknown>, keys: string[]): ConfigReader {
  // max_grad_norm gets its own message instead of "unknown key".
  const { max_grad_norm, ...rest } = params;
  const reader = new ConfigReader(rest, PATH, keys);
  if (max_grad_norm !== undefined) {
    reader.fail(
      'max_grad_norm',
      max_grad_norm,
      'is not an optimizer parameter',
      'use the top-level "gradient_clipping" key, as DeepSpeed requires',
    );
  }
  return reader;
}

function readAdam(type: 'adam' | 'adamw', params: Record<string, unknown>, groups: Partial<ParamGroupOptions>[]) {
  const r = readerFor(params, ADAM_KEYS);
  const torchAdam = r.boolean('torch_adam', false);
  const adamWMode = type === 'adamw' || r.boolean('adam_w_mode', true);
  if (r.boolean('amsgrad', false)) r.fail('amsgrad', true, 'AMSGrad is not supported (neither is it by FusedAdam)');
  const defaultDecay = torchAdam && adamWMode ? TORCH_ADAMW_WEIGHT_DECAY : ADAM_DEFAULTS.weight_decay;
  const options = {
    lr: r.number('lr', ADAM_DEFAULTS.lr, { min: 0 }),
    betas: r.betas('betas', ADAM_DEFAULTS.betas),
    eps: r.number('eps', ADAM_DEFAULTS.eps, { min: 0 }),
    weight_decay: r.number('weight_decay', defaultDecay, { min: 0 }),
    bias_correction: r.boolean('bias_correction', ADAM_DEFAULTS.bias_correction),
  };
  r.throwIfInvalid();
  return type === 'adamw' ? new AdamW(groups, options) : new Adam(groups, { ...options, adam_w_mode: adamWMode });
}

function readLamb(params: Record<string, unknown>, groups: Partial<ParamGroupOptions>[]): Lamb {
  const r = readerFor(params, LAMB_KEYS);
  const options = {
    lr: r.number('lr', LAMB_DEFAULTS.lr, { min: 0 }),
    betas: r.betas('betas', LAMB_DEFAULTS.betas),
    eps: r.number('eps', LAMB_DEFAULTS.eps, { min: 0 }),
    weight_decay: r.number('weight_decay', LAMB_DEFAULTS.weight_decay, { min: 0 }),
    bias_correction: r.boolean('bias_correction', LAMB_DEFAULTS.bias_correction),
    max_coeff: r.number('max_coeff', LAMB_DEFAULTS.max_coeff, { min: 0, minExclusive: true }),
    min_coeff: r.number('min_coeff', LAMB_DEFAULTS.min_coeff, { min: 0 }),
    eps_inside_sqrt: r.boolean('eps_inside_sqrt', false),
  };
  if (options.min_coeff > options.max_coeff) r.fail('min_coeff', options.min_coeff, 'must be <= max_coeff');
  if (r.boolean('amsgrad', false)) r.fail('amsgrad', true, 'AMSGrad is not supported (neither is it by FusedLamb)');
  r.throwIfInvalid();
  return new Lamb(groups, options);
}

function readSgd(params: Record<string, unknown>, groups: Partial<ParamGroupOptions>[]): SGD {
  const r = readerFor(params, SGD_KEYS);
  const options = {
    lr: r.number('lr', SGD_DEFAULTS.lr, { min: 0 }),
    momentum: r.number('momentum', SGD_DEFAULTS.momentum, { min: 0 }),
    dampening: r.number('dampening', SGD_DEFAULTS.dampening, { min: 0, max: 1 }),
    weight_decay: r.number('weight_decay', SGD_DEFAULTS.weight_decay, { min: 0 }),
    nesterov: r.boolean('nesterov', SGD_DEFAULTS.nesterov),
  };
  if (r.boolean('maximize', false)) r.fail('maximize', true, 'maximize is not supported: negate the loss instead');
  r.throwIfInvalid();
  return new SGD(groups, options);
}

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
  switch (type.toLowerCase()) {
    case 'adam':
      return readAdam('adam', params, groups);
    case 'adamw':
      return readAdam('adamw', params, groups);
    case 'lamb':
      return readLamb(params, groups);
    case 'sgd':
      return readSgd(params, groups);
    default: {
      const near = closestName(type, OPTIMIZER_TYPES);
      throw new ConfigError({
        path: 'optimizer.type',
        value: type,
        rule: `must be one of ${OPTIMIZER_TYPES.join(', ')}`,
        suggestion: near ? `did you mean "${near}"?` : undefined,
      });
    }
  }
}
