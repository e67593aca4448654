/**
 * Core's schema of the top level of a config: every top-level key DeepSpeed reads (runtime/config.py and the
 * config classes it calls), either implemented, accepted only at its default, or accepted only when absent
 * or disabled. Anything else is an unknown key.
 *
 * Defaults are DeepSpeed's code defaults as of v0.19.5 (the docs lag behind in places: since v0.19.3
 * `gradient_clipping` defaults to 1.0, and since v0.15.2 `steps_per_print` defaults to None, i.e. no periodic
 * progress report).
 */

import { ObjectSchema, s } from './schema.js';
import type { Schema } from './schema-base.js';
import {
  activationCheckpointingSchema,
  checkpointSchema,
  commsLoggerSchema,
  communicationDataTypeSchema,
  csvMonitorSchema,
  dataTypesSchema,
} from './sections/misc.js';
import { optimizerSchema } from './sections/optimizer.js';
import { bf16Schema, fp16Schema } from './sections/precision.js';
import { schedulerSchema } from './sections/scheduler.js';
import { zeroOptimizationSchema } from './sections/zero.js';

/** Batch keys: null when missing so that the batch rule can infer them. */
const batchKey = () => s.integer({ min: 1, nullable: true, default: null });

/** Top-level keys ZeroFlow implements, with their schemas. */
export const IMPLEMENTED_SECTIONS = {
  train_batch_size: batchKey(),
  train_micro_batch_size_per_gpu: batchKey(),
  gradient_accumulation_steps: batchKey(),
  optimizer: optimizerSchema,
  scheduler: schedulerSchema,
  gradient_clipping: s.number({ min: 0, default: 1.0 }),
  /** null: no periodic progress report (DeepSpeed's code default). */
  steps_per_print: s.integer({ min: 1, nullable: true, default: null }),
  wall_clock_breakdown: s.boolean({ default: false }),
  // Accepted at their defaults only until implemented: a set value must never be silently ignored.
  dump_state: s.onlyDefault(s.boolean({ default: false }), 'dump_state'),
  memory_breakdown: s.onlyDefault(s.boolean({ default: false }), 'memory_breakdown'),
  prescale_gradients: s.onlyDefault(s.boolean({ default: false }), 'prescale_gradients'),
  gradient_predivide_factor: s.onlyDefault(s.number({ gt: 0, default: 1.0 }), 'gradient_predivide_factor'),
  // 16-bit wire formats arrive with @zeroflow/amp
  communication_data_type: s.onlyDefault(communicationDataTypeSchema, 'communication_data_type (needs @zeroflow/amp)'),
  zero_optimization: zeroOptimizationSchema,
  zero_allow_untested_optimizer: s.boolean({ default: false }),
  fp16: fp16Schema,
  bf16: bf16Schema,
  data_types: dataTypesSchema,
  activation_checkpointing: activationCheckpointingSchema,
  csv_monitor: csvMonitorSchema,
  comms_logger: commsLoggerSchema,
  checkpoint: checkpointSchema,
  dataloader_drop_last: s.boolean({ default: false }),
  /** ZeroFlow extension: seed of every rank's random generators (data order, dropout, init). */
  seed: s.integer({ min: 0, default: 42 }),
  /**
   * ZeroFlow extension: timeout of every collective and store call, ms (torch's init_process_group timeout).
   * null: env ZEROFLOW_COMM_TIMEOUT_MS, else 10 minutes. A dead or stuck rank fails the others within it.
   */
  comm_timeout_ms: s.integer({ min: 1, nullable: true, default: null }),
} satisfies Record<string, Schema<any>>;

/** DeepSpeed scalars ZeroFlow accepts at their default value only (resolved and kept in the output). */
export const DEFAULT_ONLY_SECTIONS = {
  sparse_gradients: s.onlyDefault(s.boolean({ default: false }), 'sparse_gradients'),
  disable_allgather: s.onlyDefault(s.boolean({ default: false }), 'disable_allgather'),
  graph_harvesting: s.onlyDefault(s.boolean({ default: false }), 'graph_harvesting (CUDA graphs)'),
  gradient_allreduce_op: s.onlyDefault(
    s.enum(['mean', 'sum'], { caseInsensitive: true, default: 'mean' }),
    'gradient_allreduce_op "sum"',
  ),
  managed_gradient_accumulation: s.onlyDefault(s.boolean({ default: true }), 'unmanaged gradient accumulation'),
  seq_parallel_communication_data_type: s.onlyDefault(
    s.enum(['fp32', 'fp16', 'bf16'], { caseInsensitive: true, default: 'fp32' }),
    'sequence parallelism',
  ),
  sequence_parallel_size: s.onlyDefault(s.integer({ min: 1, default: 1 }), 'sequence parallelism'),
  zero_force_ds_cpu_optimizer: s.onlyDefault(s.boolean({ default: true }), 'zero_force_ds_cpu_optimizer false'),
  use_data_before_expert_parallelism: s.onlyDefault(s.boolean({ default: false }), 'expert parallelism'),
  log_level: s.onlyDefault(s.string().nullable().default(null), 'log_level'),
} satisfies Record<string, Schema<any>>;

/**
 * DeepSpeed sections ZeroFlow does not implement yet, by key: accepted when absent or disabled, an error
 * otherwise. A plugin that implements one (e.g. `pipeline`, `aio`) owns the key and replaces this entry.
 */
export const UNSUPPORTED_SECTIONS: Record<string, string> = {
  tensorboard: 'the TensorBoard monitor',
  wandb: 'the Weights & Biases monitor',
  comet: 'the Comet monitor',
  flops_profiler: 'the FLOPs profiler',
  elasticity: 'elastic training',
  autotuning: 'autotuning',
  compression_training: 'compression training',
  quantize_training: 'quantization-aware training',
  sparse_attention: 'sparse attention',
  aio: 'async I/O settings (aio)',
  amp: 'NVIDIA Apex AMP',
  torch_autocast: 'torch autocast',
  eigenvalue: 'eigenvalue computation',
  progressive_layer_drop: 'progressive layer drop',
  curriculum_learning: 'curriculum learning',
  data_efficiency: 'data efficiency (data sampling and routing)',
  pipeline: 'pipeline parallelism',
  hybrid_engine: 'the hybrid engine',
  nebula: 'Nebula checkpointing',
  datastates_ckpt: 'DataStates checkpointing',
  weight_quantization: 'weight quantization',
  compile: 'torch.compile / DeepCompile',
  timers: 'DeepSpeed timers settings',
  tensor_parallel: 'tensor parallelism (tensor_parallel)',
  expert_parallel: 'expert parallelism',
};

/** Other spellings DeepSpeed accepts at the top level. */
export const TOP_LEVEL_ALIASES: Record<string, string> = { bfloat16: 'bf16' };

/** A section whose schema a plugin provides instead of core. */
export interface PluginSection {
  /** Top-level key, e.g. `zero_optimization` or a new key of the plugin's own. */
  key: string;
  /** Validates and resolves the section. */
  schema: Schema;
  /** The plugin's name, shown when two plugins claim one key. */
  owner: string;
}

/** Every top-level key core knows, for suggestions. */
export function knownTopLevelKeys(): string[] {
  return [
    ...Object.keys(IMPLEMENTED_SECTIONS),
    ...Object.keys(DEFAULT_ONLY_SECTIONS),
    ...Object.keys(UNSUPPORTED_SECTIONS),
  ];
}

/** The top-level shape: core's schemas with plugin-owned keys replaced (or added). */
export function topLevelShape(pluginSections: readonly PluginSection[] = []): Record<string, Schema<any>> {
  const shape: Record<string, Schema<any>> = { ...IMPLEMENTED_SECTIONS, ...DEFAULT_ONLY_SECTIONS };
  for (const [key, feature] of Object.entries(UNSUPPORTED_SECTIONS)) shape[key] = s.unsupported(feature);
  for (const section of pluginSections) shape[section.key] = section.schema;
  return shape;
}

/**
 * Hints for top-level keys that belong inside a section (`"stage": 2` at the top level): each key of exactly
 * one object section maps to "move it into that section".
 */
export function nestedKeyHints(shape: Record<string, Schema<any>>): Record<string, string> {
  const owners = new Map<string, string[]>();
  for (const [section, schema] of Object.entries(shape)) {
    if (!(schema instanceof ObjectSchema)) continue;
    for (const key of Object.keys(schema.shape)) owners.set(key, [...(owners.get(key) ?? []), section]);
  }
  const hints: Record<string, string> = {};
  for (const [key, sections] of owners) {
    if (sections.length === 1 && !Object.hasOwn(shape, key)) {
      hints[key] = `"${key}" is a key of "${sections[0]}": move it into that section`;
    }
  }
  return hints;
}
