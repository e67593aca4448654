/**
 * Builds an LR scheduler from DeepSpeed's `scheduler` config section (`{"type": ..., "params": {...}}`).
 * DeepSpeed passes `params` as keyword arguments to the scheduler class, so unknown keys are errors there
 * as here. The type is matched case-insensitively. Keys, rules and defaults are those of the config schema
 * (config/sections/scheduler.ts), which every scheduler constructor validates its params with.
 */
import { resolveSchedulerSection } from '../config/sections/scheduler.js';
import { LRRangeTest, OneCycle } from './cycle-schedules.js';
import type { FlatOptimizer, LRScheduler } from './types.js';
import { WarmupCosineLR, WarmupDecayLR, WarmupLR } from './warmup-schedules.js';

/** The scheduler types createScheduler understands, as DeepSpeed spells them. */
export { SCHEDULER_TYPES } from '../config/sections/scheduler.js';

/**
 * Creates the scheduler a DeepSpeed `scheduler` section describes, bound to `optimizer`'s param groups.
 * A fresh scheduler (last_batch_iteration -1) writes its initial lr into the groups at once.
 *
 * @throws ConfigError for an unknown type or key, a missing required key, or an invalid value
 */
export function createScheduler(type: string, params: Record<string, unknown>, optimizer: FlatOptimizer): LRScheduler {
  // Canonical type and filled params; the constructor validates them again (cheap, and a no-op when valid).
  const section = resolveSchedulerSection(type, params);
  switch (section.type) {
    case 'WarmupLR':
      return new WarmupLR(optimizer, section.params);
    case 'WarmupDecayLR':
      return new WarmupDecayLR(optimizer, section.params);
    case 'WarmupCosineLR':
      return new WarmupCosineLR(optimizer, section.params);
    case 'OneCycle':
      return new OneCycle(optimizer, section.params);
    case 'LRRangeTest':
      return new LRRangeTest(optimizer, section.params);
  }
}
