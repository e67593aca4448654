/**
 * Splits named parameters into a decayed and a non-decayed param group.
 */
import { ConfigError } from '../errors.js';

/** A named parameter as the model reports it. */
export interface NamedParamShape {
  name: string;
  shape: number[];
}

/** Options of buildParamGroups. */
export interface BuildParamGroupsOptions {
  /** Weight decay of the decayed group. */
  weightDecay: number;
  /**
   * Which parameters get no weight decay. Default: every parameter with fewer than 2 dimensions (biases and
   * the gains of LayerNorm/RMSNorm), the rule of Hugging Face's Trainer and nanoGPT. Embeddings and weight
   * matrices (2-D and up) are decayed.
   */
  noDecay?: (name: string, shape: number[]) => boolean;
}

/** One param group: the parameter names it holds and its weight decay. */
export interface NamedParamGroup {
  names: string[];
  weight_decay: number;
}

/** The default no-decay rule: parameters with fewer than two dimensions (biases, norm gains, scalars). */
export function isNoDecayParam(_name: string, shape: number[]): boolean {
  return shape.length < 2;
}

/**
 * Groups parameters for weight decay, preserving their order within each group. Returns the decayed group
 * first, then the non-decayed one (weight_decay 0). Both are always returned, possibly empty, so that the
 * group count (and the optimizer state layout) does not depend on the model. The result's objects can be
 * passed to createOptimizer as group overrides (the `names` key is ignored there).
 */
export function buildParamGroups(params: NamedParamShape[], opts: BuildParamGroupsOptions): NamedParamGroup[] {
  if (!Number.isFinite(opts.weightDecay) || opts.weightDecay < 0) {
    throw new ConfigError({ path: 'optimizer.params.weight_decay', value: opts.weightDecay, rule: 'must be >= 0' });
  }
  const noDecay = opts.noDecay ?? isNoDecayParam;
  const decayed: string[] = [];
  const notDecayed: string[] = [];
  for (const p of params) (noDecay(p.name, p.shape) ? notDecayed : decayed).push(p.name);
  return [
    { names: decayed, weight_decay: opts.weightDecay },
    { names: notDecayed, weight_decay: 0 },
  ];
}
