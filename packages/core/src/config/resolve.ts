/**
 * `resolveConfig`: a DeepSpeed-style config (file or object) in, a fully resolved config out (every default
 * filled, every "auto" resolved, the batch rule applied), or one ConfigError listing every problem.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, type ConfigIssue, PluginError } from '../errors.js';
import { type BatchSizes, inferBatchSizes } from './batch.js';
import { parseConfigText } from './jsonc.js';
import { s, validateWithSchema } from './schema.js';
import type { Schema } from './schema-base.js';
import type {
  ActivationCheckpointingConfig,
  CheckpointConfig,
  CommsLoggerConfig,
  DataTypesConfig,
  ResolvedCsvMonitorConfig,
} from './sections/misc.js';
import type { OptimizerConfig } from './sections/optimizer.js';
import type { Bf16Config, Fp16Config } from './sections/precision.js';
import type { SchedulerConfig } from './sections/scheduler.js';
import type { ZeroOptimizationConfig } from './sections/zero.js';
import {
  nestedKeyHints,
  type PluginSection,
  TOP_LEVEL_ALIASES,
  topLevelShape,
  UNSUPPORTED_SECTIONS,
} from './top-level.js';

/**
 * A resolved config: DeepSpeed's snake_case keys, every default filled. Keys of sections owned by plugins
 * outside core's list appear under their own key (hence the index signature); keys of unsupported DeepSpeed
 * features are left out.
 */
export interface ResolvedConfig extends BatchSizes {
  optimizer: OptimizerConfig | null;
  scheduler: SchedulerConfig | null;
  /** Max global gradient norm; 0 disables clipping. */
  gradient_clipping: number;
  /** Print a progress report every N steps; null: never. */
  steps_per_print: number | null;
  wall_clock_breakdown: boolean;
  dump_state: boolean;
  memory_breakdown: boolean;
  prescale_gradients: boolean;
  gradient_predivide_factor: number;
  communication_data_type: 'fp32' | 'fp16' | 'bf16' | null;
  zero_optimization: ZeroOptimizationConfig;
  zero_allow_untested_optimizer: boolean;
  fp16: Fp16Config;
  bf16: Bf16Config;
  data_types: DataTypesConfig;
  activation_checkpointing: ActivationCheckpointingConfig;
  csv_monitor: ResolvedCsvMonitorConfig;
  comms_logger: CommsLoggerConfig;
  checkpoint: CheckpointConfig;
  dataloader_drop_last: boolean;
  /** ZeroFlow extension (default 42). */
  seed: number;
  /** ZeroFlow extension: collective/store timeout in ms; null = env ZEROFLOW_COMM_TIMEOUT_MS or 10 minutes. */
  comm_timeout_ms: number | null;
  sparse_gradients: false;
  disable_allgather: false;
  graph_harvesting: false;
  gradient_allreduce_op: 'mean';
  managed_gradient_accumulation: true;
  seq_parallel_communication_data_type: 'fp32';
  sequence_parallel_size: 1;
  zero_force_ds_cpu_optimizer: true;
  use_data_before_expert_parallelism: false;
  log_level: null;
  [pluginSection: string]: unknown;
}

/** The caller's context for {@link resolveConfig}. */
export interface ResolveContext {
  /** Total number of ranks (default 1). */
  worldSize?: number;
  /** Data-parallel replicas, for the batch rule (default: worldSize). */
  dataParallelSize?: number;
  /** The model's hidden size, for ZeRO's "auto" bucket sizes. */
  hiddenSize?: number;
  /** Sections whose schemas plugins provide; they replace core's built-in schema for that key. */
  pluginSections?: readonly PluginSection[];
  /** Values for "auto" keys by dotted path, e.g. `{ "optimizer.params.lr": 3e-4, "train_batch_size": 64 }`. */
  autoValues?: Record<string, unknown>;
}

/** Reads and parses a config file (JSON with comments). Unreadable files and syntax errors are ConfigErrors. */
export function loadConfigFile(filePath: string): unknown {
  let text: string;
  try {
    text = readFileSync(filePath, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new ConfigError({ path: '(file)', value: filePath, rule: `cannot read the config file (${code})` });
  }
  return parseConfigText(text, filePath);
}

/**
 * A config as given to `initialize`: a file path is read and parsed (JSON with comments), an object is returned
 * as is. Nothing is validated yet.
 */
export function loadConfigInput(input: string | Record<string, unknown>): Record<string, unknown> {
  if (typeof input !== 'string') return input;
  const parsed = loadConfigFile(input);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError({ path: '(root)', value: parsed, rule: 'the config file must hold a JSON object' });
  }
  return parsed as Record<string, unknown>;
}

function checkContext(ctx: ResolveContext): { worldSize: number; dataParallelSize: number } {
  const issues: ConfigIssue[] = [];
  const worldSize = ctx.worldSize ?? 1;
  const dataParallelSize = ctx.dataParallelSize ?? worldSize;
  for (const [name, v] of [
    ['worldSize', worldSize],
    ['dataParallelSize', dataParallelSize],
  ] as const) {
    if (!Number.isInteger(v) || v < 1)
      issues.push({ path: `(context).${name}`, value: v, rule: 'must be an integer >= 1' });
  }
  if (issues.length === 0 && worldSize % dataParallelSize !== 0) {
    issues.push({
      path: '(context).dataParallelSize',
      value: dataParallelSize,
      rule: `must divide worldSize (${worldSize})`,
    });
  }
  if (issues.length) throw new ConfigError(issues);
  return { worldSize, dataParallelSize };
}

function checkPluginSections(sections: readonly PluginSection[]): void {
  const owners = new Map<string, string>();
  for (const { key, owner } of sections) {
    const previous = owners.get(key);
    if (previous !== undefined) {
      throw new PluginError(`Plugins "${previous}" and "${owner}" both own the config section "${key}": remove one.`);
    }
    owners.set(key, owner);
  }
}

/** Validates one top-level key on its own, for cross-section checks that must run even when others fail. */
function validateKey<T>(schema: Schema<T>, raw: Record<string, unknown>, key: string, opts: object): T | undefined {
  const { value, issues } = validateWithSchema(schema, raw[key], key, opts);
  return issues.length ? undefined : value;
}

/**
 * Validates and resolves a DeepSpeed-style config.
 *
 * @param input - a path to a JSON (with comments) file, or the parsed object
 * @param ctx - world size, plugin-owned sections, "auto" values
 * @returns the config with every default filled and the batch sizes inferred
 * @throws ConfigError listing every problem: unknown or misspelled keys (with a suggestion), type and range
 *   errors, a broken batch rule, fp16 with bf16, features ZeroFlow does not support yet
 * @throws PluginError when two plugin sections claim the same key
 */
export function resolveConfig(input: string | Record<string, unknown>, ctx: ResolveContext = {}): ResolvedConfig {
  const { worldSize, dataParallelSize } = checkContext(ctx);
  const pluginSections = ctx.pluginSections ?? [];
  checkPluginSections(pluginSections);
  const raw: unknown = typeof input === 'string' ? loadConfigFile(input) : input;
  const shape = topLevelShape(pluginSections);
  const options = {
    autoValues: ctx.autoValues,
    autoContext: { worldSize, dataParallelSize, hiddenSize: ctx.hiddenSize },
  };
  const top = s.object(shape, { aliases: TOP_LEVEL_ALIASES, hints: nestedKeyHints(shape) });
  const { value, issues } = validateWithSchema(top, raw, '', options);

  // Cross-section rules, checked on each section's own result so they are reported alongside other issues.
  let batch: BatchSizes | undefined;
  if (raw !== null && typeof raw === 'object' && !Array.isArray(raw)) {
    const rawObject = raw as Record<string, unknown>;
    const batchInput = {
      train_batch_size: validateKey(shape.train_batch_size, rawObject, 'train_batch_size', options),
      train_micro_batch_size_per_gpu: validateKey(
        shape.train_micro_batch_size_per_gpu,
        rawObject,
        'train_micro_batch_size_per_gpu',
        options,
      ),
      gradient_accumulation_steps: validateKey(
        shape.gradient_accumulation_steps,
        rawObject,
        'gradient_accumulation_steps',
        options,
      ),
    };
    if (Object.values(batchInput).every((v) => v !== undefined)) {
      const result = inferBatchSizes(batchInput as Parameters<typeof inferBatchSizes>[0], dataParallelSize);
      issues.push(...result.issues);
      batch = result.value;
    }
    const bf16Key = Object.hasOwn(rawObject, 'bfloat16') && !Object.hasOwn(rawObject, 'bf16') ? 'bfloat16' : 'bf16';
    const fp16 = validateKey(shape.fp16, rawObject, 'fp16', options) as { enabled?: unknown } | undefined;
    const bf16 = validateKey(shape.bf16, { bf16: rawObject[bf16Key] }, 'bf16', options) as
      | { enabled?: unknown }
      | undefined;
    if (fp16?.enabled === true && bf16?.enabled === true) {
      issues.push({
        path: `${bf16Key}.enabled`,
        value: true,
        rule: 'fp16 and bf16 cannot both be enabled',
        suggestion: 'disable one of fp16.enabled and bf16.enabled',
      });
    }
  }
  if (issues.length > 0 || value === undefined || batch === undefined) throw new ConfigError(issues);

  const resolved = value as Record<string, unknown>;
  Object.assign(resolved, batch);
  // Unsupported sections resolve to null and are left out, unless a plugin owns the key.
  const owned = new Set(pluginSections.map((p) => p.key));
  for (const key of Object.keys(UNSUPPORTED_SECTIONS)) if (!owned.has(key)) delete resolved[key];
  fillSchedulerFromOptimizer(resolved);
  return resolved as ResolvedConfig;
}

/** DeepSpeed's WarmupLR warms up to the optimizer's lr when warmup_max_lr is not given. */
function fillSchedulerFromOptimizer(config: Record<string, unknown>): void {
  const scheduler = config.scheduler as { type?: string; params?: Record<string, unknown> } | null;
  const optimizer = config.optimizer as { params?: { lr?: unknown } } | null;
  if (scheduler?.type === 'WarmupLR' && scheduler.params && scheduler.params.warmup_max_lr === null) {
    const lr = optimizer?.params?.lr;
    if (typeof lr === 'number') scheduler.params.warmup_max_lr = lr;
  }
}

/** A plugin package a config needs, and why. */
export interface RequiredPlugin {
  package: string;
  reason: string;
}

/**
 * The plugin packages a config needs: ZeRO stage 1/2/3, mixed precision, NVMe offload. Works on a resolved
 * config and on a raw one (the engine asks before it knows which plugins, and so which schemas, apply), so
 * it reads the sections defensively and counts only explicit values ("auto" enables nothing).
 */
export function requiredPluginPackages(config: ResolvedConfig | Record<string, unknown>): RequiredPlugin[] {
  const section = (key: string): Record<string, unknown> => {
    const v = (config as Record<string, unknown>)[key];
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  };
  const out: RequiredPlugin[] = [];
  const zero = section('zero_optimization');
  const stage = zero.stage;
  if (stage === 1 || stage === 2 || stage === 3) {
    out.push({ package: `@zeroflow/zero-stage${stage}`, reason: `zero_optimization.stage is ${stage}` });
  }
  const bf16Key = Object.hasOwn(config, 'bf16') ? 'bf16' : 'bfloat16';
  const precision = (['fp16', bf16Key] as const).filter((k) => section(k).enabled === true);
  if (precision.length > 0) {
    out.push({ package: '@zeroflow/amp', reason: `${precision[0]}.enabled is true` });
  }
  const offloadDevice = (key: string) => {
    const v = zero[key];
    return v !== null && typeof v === 'object' ? (v as { device?: unknown }).device : undefined;
  };
  const nvme = ['offload_optimizer', 'offload_param'].filter((k) => offloadDevice(k) === 'nvme');
  if (nvme.length > 0) {
    out.push({
      package: '@zeroflow/offload-nvme',
      reason: nvme.map((k) => `zero_optimization.${k}.device is "nvme"`).join(' and '),
    });
  }
  return out;
}
