/**
 * Reads and checks the `zero_optimization` keys at ZeRO stage 3 (DeepSpeed's names and defaults). Every key
 * DeepSpeed documents is either honored or, set to a value this plugin does not implement, a ConfigError
 * that names the key, the value and the rule (see the README's key table).
 */
import { ConfigError, type ConfigIssue, type FlatOptimizer, type ResolvedConfig } from '@zeroflow/core';

/** The npm name of this plugin (errors name it). */
export const PACKAGE_NAME = '@zeroflow/zero-stage3';

/** What the stage-3 owner needs from the config. */
export interface Stage3Settings {
  /** Elements per gradient reduce-scatter bucket (`reduce_bucket_size`). */
  reduceBucketSize: number;
  /** Overlap bucket reductions with the rest of backward (`overlap_comm`, DeepSpeed's default at stage 3: true). */
  overlapComm: boolean;
  /** Parameters with at most this many elements stay whole on every rank. */
  persistenceThreshold: number;
  /** Most elements of all persistent parameters together (`stage3_model_persistence_threshold`). */
  modelPersistenceThreshold: number;
  /** Most gathered parameter elements at once, prefetched ones included (`stage3_max_live_parameters`). */
  maxLiveParameters: number;
  /** Elements to all-gather ahead along the recorded trace (`stage3_prefetch_bucket_size`); 0: no prefetch. */
  prefetchBucketSize: number;
  /** Keep gathered weights that the trace uses again within this many elements (`stage3_max_reuse_distance`). */
  maxReuseDistance: number;
  /** Log when the trace is dropped (`log_trace_cache_warnings`). */
  logTraceWarnings: boolean;
  ignoreUnusedParameters: boolean;
}

/** The defaults of the stage 1-2 keys (DeepSpeed ignores them at stage 3; we refuse other values). */
const STAGE12_DEFAULTS = {
  allgather_partitions: true,
  allgather_bucket_size: 5e8,
  use_multi_rank_bucket_allreduce: true,
  round_robin_gradients: false,
} as const;

/**
 * Checks `zero_optimization` for stage 3. Throws a ConfigError listing every key set to a value this
 * plugin does not implement, with what to do instead.
 */
export function checkStage3Config(config: ResolvedConfig, optimizer: FlatOptimizer): Stage3Settings {
  const z = config.zero_optimization;
  const issues: ConfigIssue[] = [];
  const no = (path: string, value: unknown, why: string, suggestion?: string) =>
    issues.push({
      path: `zero_optimization.${path}`,
      value,
      rule: `is not supported by ${PACKAGE_NAME}: ${why}`,
      suggestion,
    });
  if (z.stage !== 3)
    issues.push({
      path: 'zero_optimization.stage',
      value: z.stage,
      rule: `${PACKAGE_NAME} implements stage 3`,
      suggestion: `set stage 3, or use @zeroflow/zero-stage${z.stage}`,
    });
  if (!z.reduce_scatter)
    no('reduce_scatter', false, 'stage 3 always reduce-scatters gradients into the owners’ shards', 'remove the key');
  if (!z.contiguous_gradients)
    no('contiguous_gradients', false, 'gradients are always accumulated in contiguous shards', 'remove the key');
  for (const [key, dflt] of Object.entries(STAGE12_DEFAULTS)) {
    const value = z[key as keyof typeof STAGE12_DEFAULTS];
    if (value !== dflt)
      no(
        key,
        value,
        `it is a ZeRO stage 1-2 setting (default ${dflt}); stage 3 gathers each leaf layer’s weights (tune stage3_prefetch_bucket_size)`,
        'remove the key',
      );
  }
  if (z.offload_param && z.offload_param.device !== 'none')
    no(
      'offload_param.device',
      z.offload_param.device,
      'parameter offload is @zeroflow/offload-nvme’s job, not wired to stage 3 yet',
    );
  if (z.offload_optimizer && z.offload_optimizer.device !== 'none')
    no('offload_optimizer.device', z.offload_optimizer.device, 'optimizer offload is not wired to stage 3 yet');
  if (z.stage3_use_all_reduce_for_fetch_params)
    no('stage3_use_all_reduce_for_fetch_params', true, 'parameters are fetched with all-gather only');
  if (z.stage3_allgather_sequential)
    no(
      'stage3_allgather_sequential',
      true,
      'a leaf layer’s parameters are always gathered in one coalesced all-gather',
    );
  if (z.stage3_module_granularity_threshold !== 0)
    no(
      'stage3_module_granularity_threshold',
      z.stage3_module_granularity_threshold,
      'weights are gathered per leaf layer (the only granularity; DeepSpeed’s default 0 means the same)',
      'remove the key',
    );
  const leaf = z.leaf_module;
  if (leaf.classes.length || leaf.names.length || leaf.name_suffixes.length)
    no(
      'leaf_module',
      leaf,
      'every ZeroFlow leaf layer (a module that calls runLeaf) is already a gather unit; other modules cannot be made leaves',
      'remove the key',
    );
  if (!z.memory_efficient_linear)
    no(
      'memory_efficient_linear',
      false,
      'leaf layers never keep gathered weights for backward (they gather again), which is what true means',
    );
  if (!z.override_module_apply)
    no('override_module_apply', false, 'ZeroFlow modules have no apply() hook to leave alone', 'remove the key');
  if (z.pipeline_loading_checkpoint)
    no('pipeline_loading_checkpoint', true, 'it is for pipeline-parallel checkpoint loading, not wired to stage 3');
  if (z.save_muon_momentum_buffer_in_memory)
    no('save_muon_momentum_buffer_in_memory', true, 'ZeroFlow has no Muon optimizer');
  if (optimizer.type === 'Lamb')
    issues.push({
      path: 'optimizer.type',
      value: 'Lamb',
      rule: 'cannot be used with ZeRO stage 3: Lamb’s per-tensor trust ratio needs whole tensors, and ZeRO splits tensors between ranks',
      suggestion: 'use Adam/AdamW, or ZeRO stage 0',
    });
  if (issues.length) throw new ConfigError(issues);
  // Honored without a setting: sub_group_size (the optimizer steps each shard in place, so there is no
  // fp32 sub-group buffer to bound), load_from_fp32_weights and stage3_gather_16bit_weights_on_model_save
  // (weights are fp32 and every checkpoint holds the consolidated weights), elastic_checkpoint (checkpoints
  // always reshard), enable_sanity_checks (gather headers are always checked).
  return {
    reduceBucketSize: Math.max(1, Math.floor(z.reduce_bucket_size)),
    overlapComm: z.overlap_comm !== false,
    persistenceThreshold: Math.max(0, Math.floor(z.stage3_param_persistence_threshold)),
    modelPersistenceThreshold: Math.max(0, Math.floor(z.stage3_model_persistence_threshold)),
    maxLiveParameters: Math.max(1, Math.floor(z.stage3_max_live_parameters)),
    prefetchBucketSize: Math.max(0, Math.floor(z.stage3_prefetch_bucket_size)),
    maxReuseDistance: Math.max(0, Math.floor(z.stage3_max_reuse_distance)),
    logTraceWarnings: z.log_trace_cache_warnings,
    ignoreUnusedParameters: z.ignore_unused_parameters,
  };
}
