/**
 * The `zero_optimization` section: every key of DeepSpeed's DeepSpeedZeroConfig (deepspeed/runtime/zero/
 * config.py and offload_config.py) with its type and default. ZeRO++/MiCS/ZenFlow options are accepted only at
 * their defaults until ZeroFlow implements them. The ZeRO plugins may own this section with their own schema;
 * this one is the built-in default.
 *
 * Key names: the JSON keys DeepSpeed documents (`stage3_prefetch_bucket_size`, ...) are canonical, and the
 * pydantic field names DeepSpeed also accepts (`prefetch_bucket_size`, ...) are aliases.
 */

import { s } from '../schema.js';
import type { Infer } from '../schema-base.js';

const elements = (fallback: number) => s.integer({ min: 0, default: fallback });
const offloadDevice = () => s.enum(['none', 'cpu', 'nvme'], { default: 'none' });
const nvmePath = () => s.string({ minLength: 1 }).nullable().default(null);

/** `offload_param`: parameters in CPU memory or on NVMe (stage 3 only). */
export const offloadParamSchema = s.object({
  device: offloadDevice(),
  nvme_path: nvmePath(),
  buffer_count: elements(5),
  buffer_size: elements(1e8),
  max_in_cpu: elements(1e9),
  pin_memory: s.boolean({ default: true }),
});

/** `offload_optimizer`: optimizer states (and the optimizer step) in CPU memory or on NVMe. */
export const offloadOptimizerSchema = s.object({
  device: offloadDevice(),
  nvme_path: nvmePath(),
  buffer_count: elements(4),
  pin_memory: s.boolean({ default: true }),
  pipeline_read: s.boolean({ default: false }),
  pipeline_write: s.boolean({ default: false }),
  fast_init: s.boolean({ default: false }),
  ratio: s.number({ min: 0, max: 1, default: 1.0 }),
  super_offload: s.onlyDefault(s.boolean({ default: false }), 'offload_optimizer.super_offload'),
  cpuadam_cores_perc: s.number({ min: 0, max: 1, default: 0.8 }),
});

/** Hugging Face's Trainer rules for ZeRO "auto" bucket sizes, from the model's hidden size. */
const fromHidden = (f: (h: number) => number) => (ctx: { hiddenSize?: number }) =>
  ctx.hiddenSize === undefined ? undefined : Math.floor(f(ctx.hiddenSize));

/** Deprecated DeepSpeed switches mapped onto the offload sections (DeepSpeed does the same with a warning). */
const cpuOffloadTo = (value: unknown) => (value === true ? { device: 'cpu' } : value === false ? null : value);

/** Schema of `zero_optimization`. */
export const zeroOptimizationSchema = s.object(
  {
    stage: s.integer({ min: 0, max: 3, default: 0 }),
    contiguous_gradients: s.boolean({ default: true }),
    reduce_scatter: s.boolean({ default: true }),
    reduce_bucket_size: elements(5e8).auto(fromHidden((h) => h * h)),
    use_multi_rank_bucket_allreduce: s.boolean({ default: true }),
    allgather_partitions: s.boolean({ default: true }),
    allgather_bucket_size: elements(5e8),
    /** null: DeepSpeed's dynamic default, true for stage 3 only (filled in). */
    overlap_comm: s.boolean({ nullable: true, default: null }),
    load_from_fp32_weights: s.boolean({ default: true }),
    elastic_checkpoint: s.boolean({ default: false }),
    offload_param: offloadParamSchema.nullable().default(null),
    offload_optimizer: offloadOptimizerSchema.nullable().default(null),
    sub_group_size: elements(1e9),
    stage3_prefetch_bucket_size: elements(5e7).auto(fromHidden((h) => 0.9 * h * h)),
    stage3_param_persistence_threshold: elements(1e5).auto(fromHidden((h) => 10 * h)),
    // DeepSpeed's default is sys.maxsize ("no limit"); the largest exact integer in JS plays that role.
    stage3_model_persistence_threshold: elements(Number.MAX_SAFE_INTEGER),
    stage3_max_live_parameters: elements(1e9),
    stage3_max_reuse_distance: elements(1e9),
    stage3_gather_16bit_weights_on_model_save: s.boolean({ default: false }),
    stage3_module_granularity_threshold: elements(0),
    stage3_use_all_reduce_for_fetch_params: s.boolean({ default: false }),
    stage3_allgather_sequential: s.boolean({ default: false }),
    ignore_unused_parameters: s.boolean({ default: true }),
    legacy_stage1: s.onlyDefault(s.boolean({ default: false }), 'zero_optimization.legacy_stage1'),
    round_robin_gradients: s.boolean({ default: false }),
    zero_hpz_partition_size: s.onlyDefault(elements(1), 'ZeRO++ hierarchical partitioning (zero_hpz_partition_size)'),
    zero_quantized_weights: s.onlyDefault(s.boolean({ default: false }), 'ZeRO++ quantized weights'),
    zero_quantized_nontrainable_weights: s.onlyDefault(
      s.boolean({ default: false }),
      'ZeRO++ quantized non-trainable weights',
    ),
    zero_quantized_gradients: s.onlyDefault(s.boolean({ default: false }), 'ZeRO++ quantized gradients'),
    zeropp_loco_param: s.unsupported('ZeRO++ LoCo (zeropp_loco_param)'),
    mics_shard_size: s.onlyDefault(s.integer({ default: -1 }), 'MiCS (mics_shard_size)'),
    mics_hierarchical_params_gather: s.onlyDefault(s.boolean({ default: false }), 'MiCS hierarchical gather'),
    zenflow: s.unsupported('ZenFlow (zero_optimization.zenflow)'),
    memory_efficient_linear: s.boolean({ default: true }),
    pipeline_loading_checkpoint: s.boolean({ default: false }),
    override_module_apply: s.boolean({ default: true }),
    log_trace_cache_warnings: s.boolean({ default: false }),
    enable_sanity_checks: s.boolean({ default: false }),
    save_muon_momentum_buffer_in_memory: s.boolean({ default: false }),
    // DeepSpeed's default lists Python class paths of Hugging Face MoE blocks, which mean nothing here.
    leaf_module: s.object({
      classes: s.array(s.string()).default([]),
      names: s.array(s.string()).default([]),
      name_suffixes: s.array(s.string()).default([]),
    }),
  },
  {
    aliases: {
      prefetch_bucket_size: 'stage3_prefetch_bucket_size',
      param_persistence_threshold: 'stage3_param_persistence_threshold',
      model_persistence_threshold: 'stage3_model_persistence_threshold',
      max_live_parameters: 'stage3_max_live_parameters',
      max_reuse_distance: 'stage3_max_reuse_distance',
      gather_16bit_weights_on_model_save: 'stage3_gather_16bit_weights_on_model_save',
      stage3_gather_fp16_weights_on_model_save: 'stage3_gather_16bit_weights_on_model_save',
      module_granularity_threshold: 'stage3_module_granularity_threshold',
      use_all_reduce_for_fetch_params: 'stage3_use_all_reduce_for_fetch_params',
      allgather_sequential: 'stage3_allgather_sequential',
      cpu_offload: { to: 'offload_optimizer', convert: cpuOffloadTo },
      cpu_offload_param: { to: 'offload_param', convert: cpuOffloadTo },
    },
    hints: {
      cpu_offload_use_pin_memory:
        'deprecated in DeepSpeed: use offload_param.pin_memory / offload_optimizer.pin_memory',
    },
    refine(zero, { issue }) {
      zero.overlap_comm ??= zero.stage === 3;
      const param = zero.offload_param;
      const optim = zero.offload_optimizer;
      if (param && param.device !== 'none' && zero.stage !== 3) {
        issue('offload_param.device', param.device, `parameter offload needs stage 3 (stage is ${zero.stage})`);
      }
      if (optim && optim.device !== 'none' && zero.stage === 0) {
        issue('offload_optimizer.device', optim.device, 'optimizer offload needs stage 1, 2 or 3 (stage is 0)');
      }
      if (optim && optim.ratio < 1 && zero.stage !== 3) {
        issue(
          'offload_optimizer.ratio',
          optim.ratio,
          `partial offload (ratio < 1) needs stage 3 (stage is ${zero.stage})`,
        );
      }
      for (const [key, section] of [
        ['offload_param', param],
        ['offload_optimizer', optim],
      ] as const) {
        if (section?.device === 'nvme' && section.nvme_path === null) {
          issue(`${key}.nvme_path`, null, 'is required when device is "nvme"', 'give the directory on the NVMe drive');
        }
      }
    },
  },
);

/** Resolved `zero_optimization` section. */
export type ZeroOptimizationConfig = Infer<typeof zeroOptimizationSchema>;
/** Resolved `offload_param`. */
export type OffloadParamConfig = Infer<typeof offloadParamSchema>;
/** Resolved `offload_optimizer`. */
export type OffloadOptimizerConfig = Infer<typeof offloadOptimizerSchema>;
