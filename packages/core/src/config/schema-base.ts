/**
 * The base of the config schema DSL: a schema validates one value at one key path, reports every problem as a
 * {@link ConfigIssue} (it never stops at the first), fills defaults for missing keys and resolves `"auto"`.
 *
 * Schemas are immutable: the fluent modifiers (`default`, `nullable`, `auto`, `describe`) return a copy, so a
 * schema can be shared between sections and plugins without one changing another.
 */
import type { ConfigIssue } from '../errors.js';

/** What `"auto"` values may be derived from: the caller's run-time context. */
export interface AutoContext {
  /** Total number of ranks. */
  worldSize: number;
  /** Number of data-parallel replicas (world size / (tensor * pipeline parallel)). */
  dataParallelSize: number;
  /** The model's hidden size, when the caller knows it (used by ZeRO's bucket-size heuristics). */
  hiddenSize?: number;
}

/** Computes an `"auto"` value from the context; `undefined` means "cannot tell", so the default applies. */
export type AutoResolver = (ctx: AutoContext) => unknown;

/** Mutable state of one validation run. */
export class ValidationState {
  readonly issues: ConfigIssue[] = [];
  constructor(
    /** Explicit values for `"auto"` keys, by dotted path (e.g. `optimizer.params.lr`). */
    readonly autoValues: Readonly<Record<string, unknown>> = {},
    readonly autoContext: AutoContext = { worldSize: 1, dataParallelSize: 1 },
  ) {}

  issue(path: string, value: unknown, rule: string, suggestion?: string): void {
    this.issues.push(suggestion === undefined ? { path, value, rule } : { path, value, rule, suggestion });
  }
}

/** Marks a value that failed validation (its issues are already recorded). */
export const INVALID: unique symbol = Symbol('invalid');
export type Invalid = typeof INVALID;

/** The dotted path of a child key. */
export function childPath(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** Copies a default so that one resolved config cannot alias another's arrays or objects. */
function cloneDefault<T>(value: T): T {
  return value !== null && typeof value === 'object' ? structuredClone(value) : value;
}

/** JSON-ish type name of a value, for messages. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/**
 * One node of a config schema. `T` is the type of the resolved value (defaults filled, "auto" resolved).
 * Subclasses implement {@link Schema.check} for a value that is present and is not `"auto"`.
 */
export abstract class Schema<T = unknown> {
  /** Phantom field carrying the resolved type, for {@link Infer}. Never set at run time. */
  declare readonly _output: T;
  protected hasDefault = false;
  protected defaultValue: unknown;
  protected allowsNull = false;
  protected autoResolver: AutoResolver | undefined;
  protected docText: string | undefined;

  /** What a valid value looks like, in words ("an integer >= 1"); used in issue rules and docs. */
  abstract expected(): string;

  /** Validates a present value that is not `"auto"`; records issues and returns INVALID on failure. */
  protected abstract check(value: unknown, path: string, state: ValidationState): T | Invalid;

  /** The value used when the key is missing; undefined when the key is required. */
  defaultFor(): { value: T } | undefined {
    return this.hasDefault ? { value: cloneDefault(this.defaultValue as T) } : undefined;
  }

  /** Whether the literal string "auto" is a real value of this schema (then it is not resolved). */
  protected acceptsAutoLiterally(): boolean {
    return false;
  }

  /** Validates `value` found at `path`. `undefined` means the key is missing. */
  validate(value: unknown, path: string, state: ValidationState): T | Invalid {
    if (value === undefined) {
      const fallback = this.defaultFor();
      if (fallback) return fallback.value;
      state.issue(path, undefined, `is required: must be ${this.describeExpected()}`);
      return INVALID;
    }
    if (value === null && this.allowsNull) return null as T;
    if (value === 'auto' && !this.acceptsAutoLiterally()) return this.resolveAuto(path, state);
    return this.check(value, path, state);
  }

  /**
   * `"auto"` takes, in order: the caller's `autoValues[path]`, this schema's resolver, the default. Like
   * DeepSpeed, which drops "auto" keys so that its defaults apply, but the caller can supply real values.
   */
  private resolveAuto(path: string, state: ValidationState): T | Invalid {
    if (Object.hasOwn(state.autoValues, path)) {
      const given = state.autoValues[path];
      if (given === null && this.allowsNull) return null as T;
      return this.check(given, path, state);
    }
    const derived = this.autoResolver?.(state.autoContext);
    if (derived !== undefined) return this.check(derived, path, state);
    const fallback = this.defaultFor();
    if (fallback) return fallback.value;
    state.issue(
      path,
      'auto',
      `"auto" cannot be resolved here: it has no default and nothing in the context determines it`,
      `pass autoValues["${path}"] or write a value (${this.describeExpected()})`,
    );
    return INVALID;
  }

  /** `expected()` plus "or null" for nullable schemas. */
  describeExpected(): string {
    return this.allowsNull ? `${this.expected()} or null` : this.expected();
  }

  /** Human documentation of the key (shown by generated docs; optional). */
  get documentation(): string | undefined {
    return this.docText;
  }

  protected copy(): this {
    return Object.assign(Object.create(Object.getPrototypeOf(this)), this);
  }

  /** A copy with a default used when the key is missing (and for `"auto"` when nothing else decides). */
  default(value: T): this {
    const next = this.copy();
    next.hasDefault = true;
    next.defaultValue = value;
    return next;
  }

  /** A copy that also accepts `null`. */
  nullable(): Schema<T | null> {
    const next = this.copy();
    next.allowsNull = true;
    return next as unknown as Schema<T | null>;
  }

  /** A copy whose `"auto"` is computed from the context (when the caller gives no explicit value). */
  auto(resolver: AutoResolver): this {
    const next = this.copy();
    next.autoResolver = resolver;
    return next;
  }

  /** A copy with documentation attached. */
  describe(text: string): this {
    const next = this.copy();
    next.docText = text;
    return next;
  }
}

/** The resolved type of a schema. */
export type Infer<S> = S extends Schema<infer T> ? T : never;
