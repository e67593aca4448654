/**
 * Leaf schemas: numbers, strings, booleans, enums, and "anything".
 */
import { INVALID, type Invalid, Schema, typeName, type ValidationState } from './schema-base.js';
import { didYouMean } from './suggest.js';

/** Range and integrality of a number. `gt`/`lt` are exclusive bounds, `min`/`max` inclusive. */
export interface NumberRule {
  integer?: boolean;
  min?: number;
  max?: number;
  gt?: number;
  lt?: number;
}

/** A finite number (JSON has no NaN or Infinity), optionally an integer within bounds. */
export class NumberSchema extends Schema<number> {
  constructor(private readonly rule: NumberRule = {}) {
    super();
  }

  expected(): string {
    const r = this.rule;
    const bounds: string[] = [];
    if (r.min !== undefined) bounds.push(`>= ${r.min}`);
    if (r.gt !== undefined) bounds.push(`> ${r.gt}`);
    if (r.max !== undefined) bounds.push(`<= ${r.max}`);
    if (r.lt !== undefined) bounds.push(`< ${r.lt}`);
    if (r.integer && r.min !== undefined && r.max !== undefined) return `an integer from ${r.min} to ${r.max}`;
    return `${r.integer ? 'an integer' : 'a number'}${bounds.length ? ` ${bounds.join(' and ')}` : ''}`;
  }

  protected check(value: unknown, path: string, state: ValidationState): number | Invalid {
    const r = this.rule;
    const ok =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      (!r.integer || Number.isInteger(value)) &&
      (r.min === undefined || value >= r.min) &&
      (r.max === undefined || value <= r.max) &&
      (r.gt === undefined || value > r.gt) &&
      (r.lt === undefined || value < r.lt);
    if (ok) return value;
    let suggestion: string | undefined;
    if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) {
      suggestion = `write the number without quotes: ${value.trim()}`;
    }
    state.issue(path, value, `must be ${this.describeExpected()}`, suggestion);
    return INVALID;
  }
}

/** A JSON boolean; `"true"`, `1` and the like are rejected (DeepSpeed's pydantic would coerce some of them). */
export class BooleanSchema extends Schema<boolean> {
  expected(): string {
    return 'a boolean (true or false)';
  }

  protected check(value: unknown, path: string, state: ValidationState): boolean | Invalid {
    if (typeof value === 'boolean') return value;
    const suggestion = value === 'true' || value === 'false' ? `write ${value} without quotes` : undefined;
    state.issue(path, value, `must be ${this.describeExpected()}`, suggestion);
    return INVALID;
  }
}

/** Constraints of a string. */
export interface StringRule {
  minLength?: number;
  pattern?: RegExp;
  /** Words for the pattern, e.g. "a path". */
  patternText?: string;
}

/** A string. */
export class StringSchema extends Schema<string> {
  constructor(private readonly rule: StringRule = {}) {
    super();
  }

  expected(): string {
    if (this.rule.patternText) return this.rule.patternText;
    if (this.rule.minLength) return `a string of at least ${this.rule.minLength} characters`;
    return 'a string';
  }

  protected check(value: unknown, path: string, state: ValidationState): string | Invalid {
    const r = this.rule;
    if (
      typeof value === 'string' &&
      (r.minLength === undefined || value.length >= r.minLength) &&
      (r.pattern === undefined || r.pattern.test(value))
    ) {
      return value;
    }
    state.issue(path, value, `must be ${this.describeExpected()}`);
    return INVALID;
  }
}

/** Options of an enum. */
export interface EnumRule {
  /** Accept any casing and resolve to the canonical spelling (DeepSpeed lower-cases optimizer names). */
  caseInsensitive?: boolean;
}

/** One of a fixed set of strings (or numbers); resolves to the canonical spelling. */
export class EnumSchema<V extends string | number> extends Schema<V> {
  constructor(
    readonly values: readonly V[],
    private readonly rule: EnumRule = {},
  ) {
    super();
  }

  expected(): string {
    return `one of ${this.values.map((v) => JSON.stringify(v)).join(', ')}${this.rule.caseInsensitive ? ' (any case)' : ''}`;
  }

  protected override acceptsAutoLiterally(): boolean {
    return this.values.includes('auto' as V);
  }

  protected check(value: unknown, path: string, state: ValidationState): V | Invalid {
    const exact = this.values.find((v) => v === value);
    if (exact !== undefined) return exact;
    if (this.rule.caseInsensitive && typeof value === 'string') {
      const folded = this.values.find((v) => typeof v === 'string' && v.toLowerCase() === value.toLowerCase());
      if (folded !== undefined) return folded;
    }
    const names = this.values.map(String);
    const suggestion =
      typeof value === 'string' || typeof value === 'number' ? didYouMean(String(value), names) : undefined;
    state.issue(path, value, `must be ${this.describeExpected()}`, suggestion);
    return INVALID;
  }
}

/** Any JSON value, kept as is (for free-form sections whose contents ZeroFlow does not interpret). */
export class AnySchema extends Schema<unknown> {
  expected(): string {
    return 'any JSON value';
  }

  protected override acceptsAutoLiterally(): boolean {
    return true;
  }

  protected check(value: unknown): unknown {
    return value;
  }
}

/** A value that must have a certain JSON type, for messages: "must be an object, got array". */
export function wrongType(expected: string, value: unknown): string {
  return `must be ${expected}, got ${typeName(value)}`;
}
