/** Reads and checks the `zero_optimization` keys ZeRO stage 3 uses (DeepSpeed's names and defaults). */
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
  /** Most gathered parameter elements at once (`stage3_max_live_parameters`). */
  maxLiveParameters: number;
  ignoreUnusedParameters: boolean;
}

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
  if (z.elastic_checkpoint) no('elastic_checkpoint', true, 'checkpoints load at the saved data-parallel size');
  if (optimizer.type === 'Lamb')
    issues.push({
      path: 'optimizer.type',
      value: 'Lamb',
      rule: 'cannot be used with ZeRO stage 3: Lamb’s per-tensor trust ratio needs whole tensors, and ZeRO splits tensors between ranks',
      suggestion: 'use Adam/AdamW, or ZeRO stage 0',
    });
  if (issues.length) throw new ConfigError(issues);
  return {
    reduceBucketSize: Math.max(1, Math.floor(z.reduce_bucket_size)),
    overlapComm: z.overlap_comm !== false,
    persistenceThreshold: Math.max(0, Math.floor(z.stage3_param_persistence_threshold)),
    maxLiveParameters: Math.max(1, Math.floor(z.stage3_max_live_parameters)),
    ignoreUnusedParameters: z.ignore_unused_parameters,
  };
}
