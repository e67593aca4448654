/**
 * Typed errors. Every message says what went wrong and what to do about it.
 */

/** Base class of every error ZeroFlow throws on purpose. */
export class ZeroFlowError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** One problem found in a config: where, what was there, which rule it broke, and a suggestion if any. */
export interface ConfigIssue {
  /** Key path such as `optimizer.params.lr` or `zero_optimization.stage`. */
  path: string;
  /** The offending value (undefined for a missing key). */
  value: unknown;
  /** The rule, in words: "must be a number > 0", "unknown key", ... */
  rule: string;
  /** e.g. `did you mean "gradient_clipping"?` */
  suggestion?: string;
}

function formatValue(v: unknown): string {
  if (v === undefined) return 'undefined';
  try {
    const s = JSON.stringify(v);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
  } catch {
    return String(v);
  }
}

/** Formats one issue as `path = value: rule (suggestion)`. */
export function formatConfigIssue(i: ConfigIssue): string {
  return `${i.path} = ${formatValue(i.value)}: ${i.rule}${i.suggestion ? ` (${i.suggestion})` : ''}`;
}

/** An invalid config. Holds every issue found, not only the first. */
export class ConfigError extends ZeroFlowError {
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[] | ConfigIssue) {
    const list = Array.isArray(issues) ? issues : [issues];
    const head = list.length === 1 ? 'Invalid ZeroFlow config' : `Invalid ZeroFlow config (${list.length} problems)`;
    super(`${head}:\n${list.map((i) => `  - ${formatConfigIssue(i)}`).join('\n')}`);
    this.issues = list;
  }
}

/** Plugins that conflict, are missing, or whose needs are not met. Raised by `initialize`. */
export class PluginError extends ZeroFlowError {}

/** A checkpoint that is missing, truncated, corrupted or incompatible. */
export class CheckpointError extends ZeroFlowError {}
