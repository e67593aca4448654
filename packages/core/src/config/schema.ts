/**
 * The declarative config schema DSL. Core declares the top level with it and each plugin declares the section
 * it owns (`configSection: { key: 'zero_optimization', schema }`):
 *
 * ```ts
 * import { s } from '@zeroflow/core';
 * const schema = s.object({
 *   stage: s.number({ integer: true, min: 0, max: 3, default: 0 }),
 *   reduce_bucket_size: s.number({ integer: true, min: 0, default: 5e8 }),
 *   offload_optimizer: s.object({ device: s.enum(['none', 'cpu', 'nvme'], { default: 'none' }) }).nullable().default(null),
 * });
 * ```
 */
import type { ConfigIssue } from '../errors.js';
import { type AutoContext, INVALID, type Infer, type Schema, ValidationState } from './schema-base.js';
import {
  type ArrayRule,
  ArraySchema,
  CustomSchema,
  type ObjectRule,
  ObjectSchema,
  OneOfSchema,
  RecordSchema,
  RestrictedSchema,
  type Shape,
  TaggedSchema,
  TupleSchema,
  UnsupportedSchema,
} from './schema-composite.js';
import {
  AnySchema,
  BooleanSchema,
  type EnumRule,
  EnumSchema,
  type NumberRule,
  NumberSchema,
  type StringRule,
  StringSchema,
} from './schema-primitives.js';

export type { AutoContext, AutoResolver, Infer, Invalid } from './schema-base.js';
export { INVALID, Schema, ValidationState } from './schema-base.js';
export type { ArrayRule, InferShape, KeyAlias, ObjectRule, RefineTools, Shape } from './schema-composite.js';
export {
  ArraySchema,
  CustomSchema,
  isDisabledSection,
  ObjectSchema,
  OneOfSchema,
  RecordSchema,
  RestrictedSchema,
  TaggedSchema,
  TupleSchema,
  UnsupportedSchema,
} from './schema-composite.js';
export type { EnumRule, NumberRule, StringRule } from './schema-primitives.js';
export { AnySchema, BooleanSchema, EnumSchema, NumberSchema, StringSchema } from './schema-primitives.js';

/** Options every factory accepts: a default and whether null is allowed. */
interface Common<T> {
  default?: T;
  nullable?: boolean;
}

function withCommon<T>(schema: Schema<T>, opts: Common<T> | Common<T | null> | undefined): Schema<any> {
  let out: Schema<any> = schema;
  if (opts?.nullable) out = out.nullable();
  if (opts && Object.hasOwn(opts, 'default')) out = out.default(opts.default);
  return out;
}

type WithNull<T, O> = O extends { nullable: true } ? T | null : T;

/** Schema factories. Every schema also has `.default(v)`, `.nullable()`, `.auto(resolver)`, `.describe(text)`. */
export const s = {
  /** A finite number; `{integer, min, max, gt, lt}` constrain it. */
  number<O extends NumberRule & Common<number | null>>(opts?: O): Schema<WithNull<number, O>> {
    return withCommon(new NumberSchema(opts), opts);
  },
  /** Shorthand for `s.number({ integer: true, ... })`. */
  integer<O extends Omit<NumberRule, 'integer'> & Common<number | null>>(opts?: O): Schema<WithNull<number, O>> {
    return withCommon(new NumberSchema({ ...opts, integer: true }), opts);
  },
  boolean<O extends Common<boolean | null>>(opts?: O): Schema<WithNull<boolean, O>> {
    return withCommon(new BooleanSchema(), opts);
  },
  string<O extends StringRule & Common<string | null>>(opts?: O): Schema<WithNull<string, O>> {
    return withCommon(new StringSchema(opts), opts);
  },
  /** One of `values`; `caseInsensitive` accepts any casing and resolves to the canonical one. */
  enum<const V extends string | number, O extends EnumRule & Common<V | null>>(
    values: readonly V[],
    opts?: O,
  ): Schema<WithNull<V, O>> {
    return withCommon(new EnumSchema<V>(values, opts), opts);
  },
  /** An object with exactly these keys (unknown keys are issues). A missing object resolves to its defaults. */
  object<S extends Shape>(shape: S, rule?: ObjectRule<{ [K in keyof S]: Infer<S[K]> }>): ObjectSchema<S> {
    return new ObjectSchema(shape, rule);
  },
  /** An object with free keys whose values follow `values`. */
  record<T>(values: Schema<T>): Schema<Record<string, T>> {
    return new RecordSchema(values);
  },
  array<T>(items: Schema<T>, rule?: ArrayRule): Schema<T[]> {
    return new ArraySchema(items, rule);
  },
  tuple<T extends unknown[]>(items: { [K in keyof T]: Schema<T[K]> }): Schema<T> {
    return new TupleSchema<T>(items);
  },
  /** The first alternative that validates wins. */
  oneOf<T extends Schema<any>[]>(alternatives: T): Schema<Infer<T[number]>> {
    return new OneOfSchema(alternatives);
  },
  /** An object whose schema is chosen by its `tagKey` value, e.g. `optimizer.type`. */
  tagged<V extends Record<string, Schema<any>>>(
    tagKey: string,
    variants: V,
    options?: { caseInsensitive?: boolean },
  ): Schema<Infer<V[keyof V]>> {
    return new TaggedSchema(tagKey, variants, options);
  },
  /** `inner` whose `"auto"` is computed from the run-time context (world size, hidden size). */
  auto<T>(inner: Schema<T>, resolver: (ctx: AutoContext) => T | undefined): Schema<T> {
    return inner.auto(resolver);
  },
  /** Any JSON value, kept as is. */
  any(): Schema<unknown> {
    return new AnySchema().default(null);
  },
  /** A DeepSpeed section ZeroFlow does not implement: accepted only when absent or disabled; resolves to null. */
  unsupported(feature: string): Schema<null> {
    return new UnsupportedSchema(feature);
  },
  /**
   * `inner`, but only its default value is accepted: for DeepSpeed options that ZeroFlow knows but does not
   * implement (e.g. `zero_quantized_weights: true`). The error says the feature is not supported yet.
   */
  onlyDefault<T>(inner: Schema<T>, feature: string): Schema<T> {
    const fallback = inner.defaultFor();
    if (!fallback) throw new Error('s.onlyDefault needs a schema with a default');
    const expected = JSON.stringify(fallback.value);
    return new RestrictedSchema(
      inner,
      (v) => JSON.stringify(v) === expected,
      `${feature} is not supported yet by ZeroFlow`,
      `remove it or set it to ${expected}`,
    );
  },
  /** `inner` plus a predicate on its resolved value. */
  refine<T>(inner: Schema<T>, accept: (value: T) => boolean, rule: string, suggestion?: string): Schema<T> {
    return new RestrictedSchema(inner, accept, rule, suggestion);
  },
  /** A hand-written validator. Record issues on `state` and return INVALID on failure. */
  custom<T>(expected: string, fn: (value: unknown, path: string, state: ValidationState) => T | typeof INVALID) {
    return new CustomSchema<T>(expected, fn);
  },
} as const;

/** Options of {@link validateWithSchema}. */
export interface ValidateOptions {
  /** Values for `"auto"` keys by dotted path, e.g. `{ "optimizer.params.lr": 3e-4 }`. */
  autoValues?: Record<string, unknown>;
  /** Context `"auto"` resolvers read. Defaults to one rank. */
  autoContext?: Partial<AutoContext>;
}

/**
 * Validates `value` (found at key path `path`, '' for a whole document) against `schema`. Returns the value
 * with every default filled and every `"auto"` resolved, and every issue found; `value` is undefined when
 * there were issues.
 */
export function validateWithSchema<T>(
  schema: Schema<T>,
  value: unknown,
  path = '',
  options: ValidateOptions = {},
): { value: T | undefined; issues: ConfigIssue[] } {
  const worldSize = options.autoContext?.worldSize ?? 1;
  const state = new ValidationState(options.autoValues ?? {}, {
    worldSize,
    dataParallelSize: options.autoContext?.dataParallelSize ?? worldSize,
    hiddenSize: options.autoContext?.hiddenSize,
  });
  const resolved = schema.validate(value, path, state);
  return { value: resolved === INVALID || state.issues.length > 0 ? undefined : resolved, issues: state.issues };
}
