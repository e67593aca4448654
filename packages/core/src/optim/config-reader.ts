/**
 * Reads and validates the `params` object of an `optimizer` or `scheduler` config section. Every problem is
 * collected (not only the first) and thrown together as one ConfigError, and unknown keys are errors with a
 * "did you mean" suggestion: DeepSpeed passes these params as Python keyword arguments, so an unknown key is
 * an error there too.
 */
import { closestMatch } from '../config/suggest.js';
import { ConfigError, type ConfigIssue } from '../errors.js';

/** The closest candidate to `word` when it is a plausible typo (the config's own matcher). */
export const closestName = (word: string, candidates: readonly string[]): string | undefined =>
  closestMatch(word, candidates);

/** Bounds for a numeric config value. */
export interface NumberRule {
  min?: number;
  /** When true, `min` itself is not allowed. */
  minExclusive?: boolean;
  max?: number;
  maxExclusive?: boolean;
  integer?: boolean;
}

function describeRule(rule: NumberRule): string {
  const parts: string[] = [rule.integer ? 'an integer' : 'a number'];
  if (rule.min !== undefined) parts.push(`${rule.minExclusive ? '>' : '>='} ${rule.min}`);
  if (rule.max !== undefined) parts.push(`${rule.maxExclusive ? '<' : '<='} ${rule.max}`);
  return `must be ${parts.join(' ')}`;
}

/** Collects issues while reading typed values out of a params object. */
export class ConfigReader {
  readonly issues: ConfigIssue[] = [];

  /**
   * @param params the raw params object (JSON)
   * @param path the config path of the object, e.g. `optimizer.params`
   * @param allowedKeys every key this section understands
   */
  constructor(
    readonly params: Record<string, unknown>,
    readonly path: string,
    readonly allowedKeys: readonly string[],
  ) {
    for (const key of Object.keys(params)) {
      if (allowedKeys.includes(key)) continue;
      const near = closestName(key, allowedKeys);
      this.issues.push({
        path: `${path}.${key}`,
        value: params[key],
        rule: 'unknown key',
        suggestion: near ? `did you mean "${near}"?` : `known keys: ${allowedKeys.join(', ')}`,
      });
    }
  }

  /** Records an issue found by the caller. */
  fail(key: string, value: unknown, rule: string, suggestion?: string): void {
    this.issues.push({ path: `${this.path}.${key}`, value, rule, suggestion });
  }

  /** The raw value; JSON null counts as absent, like Python's None default. */
  get(key: string): unknown {
    const v = this.params[key];
    return v === null ? undefined : v;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  private checkNumber(key: string, v: unknown, rule: NumberRule): v is number {
    if (v === 'auto') {
      this.fail(key, v, '"auto" must be resolved before the optimizer/scheduler is built', 'set a number');
      return false;
    }
    const ok =
      typeof v === 'number' &&
      Number.isFinite(v) &&
      (!rule.integer || Number.isInteger(v)) &&
      (rule.min === undefined || (rule.minExclusive ? v > rule.min : v >= rule.min)) &&
      (rule.max === undefined || (rule.maxExclusive ? v < rule.max : v <= rule.max));
    if (!ok) this.fail(key, v, describeRule(rule));
    return ok;
  }

  /** A number, or `fallback` when the key is absent. */
  number(key: string, fallback: number, rule: NumberRule = {}): number {
    const v = this.get(key);
    if (v === undefined) return fallback;
    return this.checkNumber(key, v, rule) ? v : fallback;
  }

  /** A number that must be present. */
  requiredNumber(key: string, rule: NumberRule = {}): number {
    if (!this.has(key)) {
      this.fail(key, undefined, `is required (${describeRule(rule).slice(5)})`);
      return Number.NaN;
    }
    return this.number(key, Number.NaN, rule);
  }

  /** A number or, like DeepSpeed's `float or list` params, one number per param group. */
  perGroupNumber(key: string, fallback: number | number[], groupCount: number, rule: NumberRule = {}): number[] {
    const v = this.get(key);
    const broadcast = (x: number | number[]): number[] => (Array.isArray(x) ? [...x] : new Array(groupCount).fill(x));
    if (v === undefined) return broadcast(fallback);
    if (Array.isArray(v)) {
      if (v.length !== groupCount) {
        this.fail(key, v, `must be a number or a list of ${groupCount} numbers (one per param group)`);
        return broadcast(fallback);
      }
      const out: number[] = [];
      for (const x of v) out.push(this.checkNumber(key, x, rule) ? x : Number.NaN);
      return out;
    }
    return this.checkNumber(key, v, rule) ? broadcast(v) : broadcast(fallback);
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') {
      this.fail(key, v, 'must be true or false');
      return fallback;
    }
    return v;
  }

  /** One of a fixed set of strings. */
  choice<T extends string>(key: string, fallback: T, choices: readonly T[]): T {
    const v = this.get(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
      const near = typeof v === 'string' ? closestName(v, choices) : undefined;
      this.fail(key, v, `must be one of ${choices.map((c) => `"${c}"`).join(', ')}`, near && `did you mean "${near}"?`);
      return fallback;
    }
    return v as T;
  }

  /** A pair of numbers in [0, 1), such as Adam's betas. */
  betas(key: string, fallback: [number, number]): [number, number] {
    const v = this.get(key);
    if (v === undefined) return [fallback[0], fallback[1]];
    const ok =
      Array.isArray(v) &&
      v.length === 2 &&
      v.every((b) => typeof b === 'number' && Number.isFinite(b) && b >= 0 && b < 1);
    if (!ok) {
      this.fail(key, v, 'must be a list of two numbers in [0, 1)', 'e.g. [0.9, 0.999]');
      return [fallback[0], fallback[1]];
    }
    return [v[0], v[1]];
  }

  /** Throws every collected issue as one ConfigError. */
  throwIfInvalid(): void {
    if (this.issues.length > 0) throw new ConfigError(this.issues);
  }
}
