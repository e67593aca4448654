/**
 * Builds an LR scheduler from DeepSpeed's `scheduler` config section (`{"type": ..., "params": {...}}`).
 * DeepSpeed passes `params` as keyword arguments to the scheduler class, so unknown keys are errors there
 * as here. The type is matched case-insensitively.
 */
import { ConfigError } from '../errors.js';
import { closestName } from './config-reader.js';
import { LRRangeTest, type LRRangeTestParams, OneCycle, type OneCycleParams } from './cycle-schedules.js';
import type { FlatOptimizer, LRScheduler } from './types.js';
import {
  WarmupCosineLR,
  type WarmupCosineLRParams,
  WarmupDecayLR,
  type WarmupDecayLRParams,
  WarmupLR,
  type WarmupLRParams,
} from './warmup-schedules.js';

/** The scheduler types createScheduler understands, as DeepSpeed spells them. */
export const SCHEDULER_TYPES = ['WarmupLR', 'WarmupDecayLR', 'WarmupCosineLR', 'OneCycle', 'LRRangeTest'] as const;

/**
 * Creates the scheduler a DeepSpeed `scheduler` section describes, bound to `optimizer`'s param groups.
 * A fresh scheduler (last_batch_iteration -1) writes its initial lr into the groups at once.
 *
 * @throws ConfigError for an unknown type or key, a missing required key, or an invalid value
 */
export function createScheduler(type: string, params: Record<string, unknown>, optimizer: FlatOptimizer): LRScheduler {
  switch (type.toLowerCase()) {
    case 'warmuplr':
      return new WarmupLR(optimizer, params as WarmupLRParams);
    case 'warmupdecaylr':
      return new WarmupDecayLR(optimizer, params as unknown as WarmupDecayLRParams);
    case 'warmupcosinelr':
      return new WarmupCosineLR(optimizer, params as unknown as WarmupCosineLRParams);
    case 'onecycle':
      return new OneCycle(optimizer, params as unknown as OneCycleParams);
    case 'lrrangetest':
      return new LRRangeTest(optimizer, params as LRRangeTestParams);
    default: {
      const near = closestName(type, SCHEDULER_TYPES);
      throw new ConfigError({
        path: 'scheduler.type',
        value: type,
        rule: `must be one of ${SCHEDULER_TYPES.join(', ')}`,
        suggestion: near ? `did you mean "${near}"?` : undefined,
      });
    }
  }
}
