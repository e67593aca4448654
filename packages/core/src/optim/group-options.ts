/**
 * Merges per-group overrides over an optimizer's defaults and validates the result, the way torch's
 * `Optimizer.add_param_group` fills each group from `defaults`.
 */
import { ConfigError, type ConfigIssue } from '../errors.js';
import type { ParamGroupOptions } from './types.js';

function checkRange(
  issues: ConfigIssue[],
  path: string,
  value: unknown,
  ok: (v: number) => boolean,
  rule: string,
): void {
  if (value === undefined) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || !ok(value)) issues.push({ path, value, rule });
}

/**
 * One group per override (one default group when `overrides` is empty), each `{...defaults, ...override}`
 * restricted to the keys of ParamGroupOptions (extra keys such as `names` from buildParamGroups are dropped).
 * Throws a ConfigError listing every invalid value.
 */
export function resolveParamGroups(
  overrides: readonly Partial<ParamGroupOptions>[],
  defaults: ParamGroupOptions,
  optimizerName: string,
): ParamGroupOptions[] {
  const keys = Object.keys(defaults) as (keyof ParamGroupOptions)[];
  const list = overrides.length === 0 ? [{}] : overrides;
  const issues: ConfigIssue[] = [];
  const groups = list.map((override, i) => {
    const group = { ...defaults } as ParamGroupOptions & Record<string, unknown>;
    for (const key of keys) {
      const v = override[key];
      if (v !== undefined) group[key] = v as never;
    }
    if (group.betas) group.betas = [group.betas[0], group.betas[1]];
    const at = (k: string) => `${optimizerName}.param_groups[${i}].${k}`;
    checkRange(issues, at('lr'), group.lr, (v) => v >= 0, 'must be a number >= 0');
    checkRange(issues, at('weight_decay'), group.weight_decay, (v) => v >= 0, 'must be a number >= 0');
    checkRange(issues, at('eps'), group.eps, (v) => v >= 0, 'must be a number >= 0');
    checkRange(issues, at('momentum'), group.momentum, (v) => v >= 0, 'must be a number >= 0');
    checkRange(issues, at('dampening'), group.dampening, (v) => v >= 0 && v <= 1, 'must be a number in [0, 1]');
    checkRange(issues, at('max_coeff'), group.max_coeff, (v) => v > 0, 'must be a number > 0');
    checkRange(issues, at('min_coeff'), group.min_coeff, (v) => v >= 0, 'must be a number >= 0');
    if (group.max_coeff !== undefined && group.min_coeff !== undefined && group.min_coeff > group.max_coeff) {
      issues.push({ path: at('min_coeff'), value: group.min_coeff, rule: 'must be <= max_coeff' });
    }
    if (group.betas !== undefined) {
      const b = group.betas;
      if (!Array.isArray(b) || b.length !== 2 || !b.every((x) => Number.isFinite(x) && x >= 0 && x < 1)) {
        issues.push({ path: at('betas'), value: b, rule: 'must be two numbers in [0, 1)' });
      }
    }
    if (group.nesterov && ((group.momentum ?? 0) <= 0 || (group.dampening ?? 0) !== 0)) {
      issues.push({
        path: at('nesterov'),
        value: true,
        rule: 'Nesterov momentum needs momentum > 0 and dampening = 0 (as torch.optim.SGD)',
      });
    }
    return group as ParamGroupOptions;
  });
  if (issues.length > 0) throw new ConfigError(issues);
  return groups;
}
