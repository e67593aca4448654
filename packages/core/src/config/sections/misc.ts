/**
 * Smaller sections core implements: activation checkpointing, the CSV monitor, the comms logger, checkpoint
 * options and data types. Defaults from DeepSpeed's activation_checkpointing/config.py, monitor/config.py,
 * comm/constants.py, model_checkpointing/ and runtime/constants.py.
 */

import { s } from '../schema.js';
import type { Infer } from '../schema-base.js';

/**
 * Present in a config, this section turns activation checkpointing on for models that support it
 * (`setActivationCheckpointing`, e.g. every transformer block of @zeroflow/models). The partitioning and
 * offload options need tensor parallelism or CPU offload of activations, which ZeroFlow does not have yet:
 * they are accepted only at their default (false).
 */
export const activationCheckpointingSchema = s.object({
  partition_activations: s.onlyDefault(s.boolean({ default: false }), 'activation_checkpointing.partition_activations'),
  contiguous_memory_optimization: s.onlyDefault(
    s.boolean({ default: false }),
    'activation_checkpointing.contiguous_memory_optimization',
  ),
  cpu_checkpointing: s.onlyDefault(s.boolean({ default: false }), 'activation_checkpointing.cpu_checkpointing'),
  /** null: checkpoint every layer the model marks. */
  number_checkpoints: s.onlyDefault(
    s.integer({ min: 1, nullable: true, default: null }),
    'activation_checkpointing.number_checkpoints',
  ),
  synchronize_checkpoint_boundary: s.boolean({ default: false }),
  profile: s.onlyDefault(s.boolean({ default: false }), 'activation_checkpointing.profile'),
});

export const csvMonitorSchema = s.object({
  enabled: s.boolean({ default: false }),
  /** '' means under the launching directory, as in DeepSpeed. */
  output_path: s.string({ default: '' }),
  job_name: s.string({ default: 'DeepSpeedJobName' }),
});

export const commsLoggerSchema = s.object({
  /** Wraps the engine's `comm` service in a LoggedProcessGroup (counts, bytes, latency per collective). */
  enabled: s.boolean({ default: false }),
  prof_all: s.boolean({ default: true }),
  /** Collective names to profile when prof_all is false, e.g. "all_reduce". */
  prof_ops: s.array(s.string({ minLength: 1 })).default([]),
  verbose: s.boolean({ default: false }),
  debug: s.boolean({ default: false }),
});

export const checkpointSchema = s.object({
  /** Whether ranks must agree on a checkpoint tag (DeepSpeed: Warn, Ignore or Fail, any case). */
  tag_validation: s.enum(['WARN', 'IGNORE', 'FAIL'], { caseInsensitive: true, default: 'WARN' }),
  // ZeroFlow checkpoints load at any world size without a conversion step; the flag is accepted for
  // compatibility and changes nothing.
  load_universal: s.boolean({ default: false }),
  use_node_local_storage: s.boolean({ default: false }),
  parallel_write: s.object({ pipeline_stage: s.boolean({ default: false }) }),
  checkpoint_serialization: s.boolean({ default: true }),
  writer: s.unsupported('checkpoint.writer (DeepSpeed fast checkpoint writers)'),
});

const dtype = () => s.enum(['fp32', 'fp16', 'bf16'], { caseInsensitive: true });

export const dataTypesSchema = s.object({
  /** null: accumulate in the training dtype. */
  grad_accum_dtype: dtype().nullable().default(null),
  param_dtype: s.onlyDefault(dtype().nullable().default(null), 'data_types.param_dtype'),
  buffer_dtype: s.onlyDefault(dtype().nullable().default(null), 'data_types.buffer_dtype'),
});

/** `communication_data_type`: null lets the engine pick from fp16/bf16 settings (DeepSpeed's default). */
export const communicationDataTypeSchema = dtype().nullable().default(null);

export type ActivationCheckpointingConfig = Infer<typeof activationCheckpointingSchema>;
export type ResolvedCsvMonitorConfig = Infer<typeof csvMonitorSchema>;
export type CommsLoggerConfig = Infer<typeof commsLoggerSchema>;
export type CheckpointConfig = Infer<typeof checkpointSchema>;
export type DataTypesConfig = Infer<typeof dataTypesSchema>;
