/**
 * What the ZeRO stage 1/2 plugins accept from `zero_optimization` (core's schema validates types and
 * defaults; this checks the keys a stage does not implement, so that nothing is silently ignored).
 */
import type { ResolvedConfig } from '../config/index.js';
import { ConfigError, type ConfigIssue } from '../errors.js';
import type { FlatOptimizer } from '../optim/types.js';

/** The `zero_optimization` values a stage 1/2 owner uses. */
export interface ZeroStageSettings {
  reduceBucketSize: number;
  allgatherBucketSize: number;
  reduceScatter: boolean;
  overlapComm: boolean;
  allgatherPartitions: boolean;
  ignoreUnusedParameters: boolean;
}

/**
 * Reads and checks `zero_optimization` for ZeRO stage `stage` run by package `pkg`. Throws a ConfigError
 * listing every key set to a value the stage does not implement. Keys DeepSpeed documents for stage 3 only
 * (`stage3_*`, `sub_group_size`, `offload_param`, ...) are ignored, as DeepSpeed ignores them at stages 1/2.
 * `elastic_checkpoint` is accepted with either value: DeepSpeed's elastic checkpoint means loading at another
 * data-parallel size, which ZeroFlow always does (checkpoints reshard across world sizes and stages 0-3, see
 * docs/checkpoints.md).
 */
export function checkZeroStageConfig(
  config: ResolvedConfig,
  stage: 1 | 2,
  pkg: string,
  optimizer: FlatOptimizer,
): ZeroStageSettings {
  const z = config.zero_optimization;
  const issues: ConfigIssue[] = [];
  const no = (path: string, value: unknown, why: string, suggestion?: string) =>
    issues.push({
      path: `zero_optimization.${path}`,
      value,
      rule: `is not supported yet by ${pkg}: ${why}`,
      suggestion,
    });
  if (z.stage !== stage)
    issues.push({
      path: 'zero_optimization.stage',
      value: z.stage,
      rule: `${pkg} implements stage ${stage}`,
      suggestion: `set stage ${stage}, or use @zeroflow/zero-stage${z.stage}`,
    });
  if (!z.contiguous_gradients)
    no('contiguous_gradients', false, 'gradients are always accumulated in contiguous buffers', 'remove the key');
  if (!z.use_multi_rank_bucket_allreduce)
    no('use_multi_rank_bucket_allreduce', false, 'only the default is implemented');
  if (z.round_robin_gradients) no('round_robin_gradients', true, 'it only matters for CPU offload ordering');
  const offload = z.offload_optimizer;
  if (offload?.device === 'nvme')
    no('offload_optimizer.device', 'nvme', 'NVMe optimizer offload is for stage 3 (@zeroflow/offload-nvme)');
  if (optimizer.type === 'Lamb') {
    issues.push({
      path: 'optimizer.type',
      value: 'Lamb',
      rule: `cannot be used with ZeRO stage ${stage}: Lamb's per-tensor trust ratio needs whole tensors, and ZeRO splits tensors between ranks`,
      suggestion: 'use Adam/AdamW, or ZeRO stage 0',
    });
  }
  if (issues.length) throw new ConfigError(issues);
  return {
    reduceBucketSize: Math.max(1, Math.floor(z.reduce_bucket_size)),
    allgatherBucketSize: Math.max(1, Math.floor(z.allgather_bucket_size)),
    reduceScatter: z.reduce_scatter,
    overlapComm: z.overlap_comm === true,
    allgatherPartitions: z.allgather_partitions,
    ignoreUnusedParameters: z.ignore_unused_parameters,
  };
}
