/** Small readers for Hugging Face `config.json` objects that collect every problem before throwing. */
import { ConfigError, type ConfigIssue } from '@zeroflow/core';

/** A parsed Hugging Face `config.json`. */
export type HFConfigJSON = Record<string, unknown>;

/** The first of `keys` present (HF renamed some fields over time); an issue if none is a finite number. */
export function hfNumber(json: HFConfigJSON, keys: string[], issues: ConfigIssue[]): number {
  const key = keys.find((k) => json[k] !== undefined && json[k] !== null);
  const value = key === undefined ? undefined : json[key];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    issues.push({
      path: key ?? keys[0],
      value,
      rule: `required number${keys.length > 1 ? ` (any of ${keys.join(', ')})` : ''}`,
    });
    return Number.NaN;
  }
  return value;
}

/** An optional number: undefined when absent or null. */
export function hfOptionalNumber(json: HFConfigJSON, key: string, issues: ConfigIssue[]): number | undefined {
  const value = json[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    issues.push({ path: key, value, rule: 'must be a number or null' });
    return undefined;
  }
  return value;
}

/** A raw value, undefined when absent or null. */
export function hfKey(json: HFConfigJSON, key: string): unknown {
  const value = json[key];
  return value === null ? undefined : value;
}

export function throwIssues(issues: ConfigIssue[]): void {
  if (issues.length) throw new ConfigError(issues);
}
