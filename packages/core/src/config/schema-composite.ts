/**
 * Composite schemas: objects (strict keys, aliases, cross-key checks), records, arrays, tuples, alternatives,
 * tagged unions, sections ZeroFlow does not support yet, and custom validators.
 */
import { childPath, INVALID, type Infer, type Invalid, Schema, typeName, ValidationState } from './schema-base.js';
import { EnumSchema, wrongType } from './schema-primitives.js';
import { didYouMean } from './suggest.js';

/** Shape of an object schema: key to schema. */
export type Shape = Record<string, Schema<any>>;
/** The resolved type of an object schema's shape. */
export type InferShape<S extends Shape> = { [K in keyof S]: Infer<S[K]> };

/** Another spelling of a key (DeepSpeed's pydantic aliases and deprecated keys). */
export interface KeyAlias {
  /** The canonical key. */
  to: string;
  /** Converts the alias's value into the canonical key's value (e.g. `cpu_offload: true` -> `{device: "cpu"}`). */
  convert?: (value: unknown) => unknown;
}

/** Tools handed to an object's `refine` hook. */
export interface RefineTools {
  /** The object's own path. */
  path: string;
  /** The object as written (after aliases were mapped), to tell a default from an explicit value. */
  raw: Readonly<Record<string, unknown>>;
  /** Records an issue at `path.key` (or at the object itself when `key` is ''). */
  issue(key: string, value: unknown, rule: string, suggestion?: string): void;
  state: ValidationState;
}

/** Options of an object schema. */
export interface ObjectRule<T> {
  /** Other accepted spellings, by alias key. Giving both an alias and its canonical key is an issue. */
  aliases?: Record<string, string | KeyAlias>;
  /** A specific message for keys that are known mistakes (e.g. `max_grad_norm` in optimizer params). */
  hints?: Record<string, string>;
  /**
   * Cross-key checks and derived defaults, run after every key validated. May modify `value` in place
   * (e.g. fill `overlap_comm` from `stage`).
   */
  refine?: (value: T, tools: RefineTools) => void;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON object with a fixed set of keys: unknown keys are issues with a "did you mean" suggestion. */
export class ObjectSchema<S extends Shape> extends Schema<InferShape<S>> {
  constructor(
    readonly shape: S,
    private readonly rule: ObjectRule<InferShape<S>> = {},
  ) {
    super();
  }

  expected(): string {
    return 'an object';
  }

  /** Keys this object accepts, canonical first, then aliases. */
  knownKeys(): string[] {
    return [...Object.keys(this.shape), ...Object.keys(this.rule.aliases ?? {})];
  }

  /** A missing object is validated as `{}`: its keys' defaults fill it and its required keys are reported. */
  override validate(value: unknown, path: string, state: ValidationState): InferShape<S> | Invalid {
    if (value === undefined && !this.hasDefault) return this.check({}, path, state);
    return super.validate(value, path, state);
  }

  override defaultFor(): { value: InferShape<S> } | undefined {
    const explicit = super.defaultFor();
    if (explicit) return explicit;
    const scratch = new ValidationState();
    const value = this.check({}, '', scratch);
    return value === INVALID || scratch.issues.length > 0 ? undefined : { value };
  }

  private applyAliases(input: Record<string, unknown>, path: string, state: ValidationState): Record<string, unknown> {
    const out: Record<string, unknown> = { ...input };
    for (const [alias, spec] of Object.entries(this.rule.aliases ?? {})) {
      if (!Object.hasOwn(input, alias)) continue;
      const { to, convert } = typeof spec === 'string' ? { to: spec, convert: undefined } : spec;
      delete out[alias];
      if (Object.hasOwn(input, to)) {
        state.issue(
          childPath(path, alias),
          input[alias],
          `is another name for "${to}", which is also given`,
          `keep only "${to}"`,
        );
        continue;
      }
      out[to] = convert ? convert(input[alias]) : input[alias];
    }
    return out;
  }

  protected check(value: unknown, path: string, state: ValidationState): InferShape<S> | Invalid {
    if (!isPlainObject(value)) {
      state.issue(path === '' ? '(root)' : path, value, wrongType('an object', value));
      return INVALID;
    }
    const input = this.applyAliases(value, path, state);
    let ok = true;
    const known = this.knownKeys();
    for (const key of Object.keys(input)) {
      if (Object.hasOwn(this.shape, key)) continue;
      ok = false;
      const hint = this.rule.hints?.[key];
      const suggestion =
        hint ?? didYouMean(key, known) ?? (known.length <= 12 ? `known keys: ${known.join(', ')}` : undefined);
      state.issue(childPath(path, key), input[key], 'unknown key', suggestion);
    }
    const result: Record<string, unknown> = {};
    for (const [key, schema] of Object.entries(this.shape)) {
      const resolved = schema.validate(input[key], childPath(path, key), state);
      if (resolved === INVALID) ok = false;
      else result[key] = resolved;
    }
    if (!ok) return INVALID;
    const typed = result as InferShape<S>;
    if (this.rule.refine) {
      const before = state.issues.length;
      this.rule.refine(typed, {
        path,
        raw: input,
        state,
        issue: (key, v, rule, suggestion) => state.issue(key === '' ? path : childPath(path, key), v, rule, suggestion),
      });
      if (state.issues.length > before) return INVALID;
    }
    return typed;
  }
}

/** An object with free keys whose values all follow one schema. */
export class RecordSchema<T> extends Schema<Record<string, T>> {
  constructor(private readonly values: Schema<T>) {
    super();
  }

  expected(): string {
    return `an object whose values are ${this.values.expected()}`;
  }

  protected check(value: unknown, path: string, state: ValidationState): Record<string, T> | Invalid {
    if (!isPlainObject(value)) {
      state.issue(path, value, wrongType('an object', value));
      return INVALID;
    }
    const out: Record<string, T> = {};
    let ok = true;
    for (const [key, v] of Object.entries(value)) {
      const resolved = this.values.validate(v, childPath(path, key), state);
      if (resolved === INVALID) ok = false;
      else out[key] = resolved;
    }
    return ok ? out : INVALID;
  }
}

/** Length limits of an array. */
export interface ArrayRule {
  minLength?: number;
  maxLength?: number;
}

/** A JSON array whose items all follow one schema. */
export class ArraySchema<T> extends Schema<T[]> {
  constructor(
    private readonly items: Schema<T>,
    private readonly rule: ArrayRule = {},
  ) {
    super();
  }

  expected(): string {
    const { minLength: lo, maxLength: hi } = this.rule;
    const size =
      lo !== undefined && lo === hi ? ` of ${lo}` : lo ? ` of at least ${lo}` : hi ? ` of at most ${hi}` : '';
    return `an array${size} of ${this.items.expected()}`;
  }

  protected check(value: unknown, path: string, state: ValidationState): T[] | Invalid {
    const { minLength, maxLength } = this.rule;
    if (
      !Array.isArray(value) ||
      (minLength !== undefined && value.length < minLength) ||
      (maxLength !== undefined && value.length > maxLength)
    ) {
      state.issue(path, value, `must be ${this.describeExpected()}`);
      return INVALID;
    }
    const out: T[] = [];
    let ok = true;
    value.forEach((item, i) => {
      const resolved = this.items.validate(item, `${path}[${i}]`, state);
      if (resolved === INVALID) ok = false;
      else out.push(resolved);
    });
    return ok ? out : INVALID;
  }
}

/** A fixed-length array with one schema per position, e.g. Adam's `betas: [beta1, beta2]`. */
export class TupleSchema<T extends unknown[]> extends Schema<T> {
  constructor(private readonly items: { [K in keyof T]: Schema<T[K]> }) {
    super();
  }

  expected(): string {
    return `an array of ${this.items.length}: [${(this.items as Schema[]).map((s) => s.expected()).join(', ')}]`;
  }

  protected check(value: unknown, path: string, state: ValidationState): T | Invalid {
    const items = this.items as Schema[];
    if (!Array.isArray(value) || value.length !== items.length) {
      state.issue(path, value, `must be ${this.describeExpected()}`);
      return INVALID;
    }
    const out: unknown[] = [];
    let ok = true;
    items.forEach((schema, i) => {
      const resolved = schema.validate(value[i], `${path}[${i}]`, state);
      if (resolved === INVALID) ok = false;
      else out.push(resolved);
    });
    return ok ? (out as T) : INVALID;
  }
}

/** The first alternative that validates without issues wins. */
export class OneOfSchema<T> extends Schema<T> {
  constructor(private readonly alternatives: Schema<T>[]) {
    super();
  }

  expected(): string {
    return this.alternatives.map((a) => a.describeExpected()).join(' or ');
  }

  protected check(value: unknown, path: string, state: ValidationState): T | Invalid {
    for (const alternative of this.alternatives) {
      const scratch = new ValidationState(state.autoValues, state.autoContext);
      const resolved = alternative.validate(value, path, scratch);
      if (resolved !== INVALID && scratch.issues.length === 0) return resolved;
    }
    state.issue(path, value, `must be ${this.describeExpected()}`);
    return INVALID;
  }
}

/**
 * An object whose shape depends on a tag key, e.g. `optimizer.type` selects the `params` schema. The tag is
 * matched (case-insensitively if asked) and canonicalized before the variant validates the whole object.
 */
export class TaggedSchema<V extends Record<string, Schema<any>>> extends Schema<Infer<V[keyof V]>> {
  private readonly tag: EnumSchema<string>;
  constructor(
    private readonly tagKey: string,
    private readonly variants: V,
    options: { caseInsensitive?: boolean } = {},
  ) {
    super();
    this.tag = new EnumSchema(Object.keys(variants), options);
  }

  expected(): string {
    return `an object with "${this.tagKey}" ${this.tag.expected()}`;
  }

  protected check(value: unknown, path: string, state: ValidationState): Infer<V[keyof V]> | Invalid {
    if (!isPlainObject(value)) {
      state.issue(path, value, wrongType('an object', value));
      return INVALID;
    }
    const tag = this.tag.validate(value[this.tagKey], childPath(path, this.tagKey), state);
    if (tag === INVALID) return INVALID;
    return this.variants[tag].validate({ ...value, [this.tagKey]: tag }, path, state) as Infer<V[keyof V]> | Invalid;
  }
}

/**
 * Wraps a schema with an extra predicate on the resolved value, e.g. "accepted only while disabled" for
 * DeepSpeed features that ZeroFlow does not implement yet.
 */
export class RestrictedSchema<T> extends Schema<T> {
  constructor(
    private readonly inner: Schema<T>,
    private readonly accept: (value: T) => boolean,
    private readonly rule: string,
    private readonly suggestion?: string,
  ) {
    super();
    const fallback = inner.defaultFor();
    if (fallback) this.hasDefault = true;
    this.defaultValue = fallback?.value;
  }

  expected(): string {
    return this.inner.describeExpected();
  }

  override validate(value: unknown, path: string, state: ValidationState): T | Invalid {
    if (value === undefined && this.hasDefault) return super.validate(value, path, state);
    const resolved = this.inner.validate(value, path, state);
    if (resolved === INVALID) return INVALID;
    if (!this.accept(resolved)) {
      state.issue(path, value, this.rule, this.suggestion);
      return INVALID;
    }
    return resolved;
  }

  protected check(value: unknown, path: string, state: ValidationState): T | Invalid {
    return this.validate(value, path, state);
  }
}

/** Whether a section is absent or switched off: missing, null, false, `{}`, or `{"enabled": false, ...}`. */
export function isDisabledSection(value: unknown): boolean {
  if (value === undefined || value === null || value === false) return true;
  if (!isPlainObject(value)) return false;
  return Object.keys(value).length === 0 || value.enabled === false;
}

/**
 * A DeepSpeed section ZeroFlow knows but does not implement yet: accepted only when absent or disabled (see
 * {@link isDisabledSection}), resolved to `null`. A plugin that implements it owns the key instead.
 */
export class UnsupportedSchema extends Schema<null> {
  constructor(private readonly feature: string) {
    super();
    this.hasDefault = true;
    this.defaultValue = null;
  }

  expected(): string {
    return 'absent or disabled';
  }

  protected override acceptsAutoLiterally(): boolean {
    return true;
  }

  protected check(value: unknown, path: string, state: ValidationState): null | Invalid {
    if (isDisabledSection(value)) return null;
    state.issue(
      path,
      value,
      `${this.feature} is not supported yet by ZeroFlow`,
      `remove "${path}" or disable it (${typeName(value) === 'object' ? '"enabled": false' : 'set it to null'})`,
    );
    return INVALID;
  }
}

/** A validator written by hand, for rules the declarative schemas cannot express. */
export class CustomSchema<T> extends Schema<T> {
  constructor(
    private readonly expectedText: string,
    private readonly fn: (value: unknown, path: string, state: ValidationState) => T | Invalid,
  ) {
    super();
  }

  expected(): string {
    return this.expectedText;
  }

  protected check(value: unknown, path: string, state: ValidationState): T | Invalid {
    return this.fn(value, path, state);
  }
}
