/**
 * Shared behaviour of DeepSpeed's LR schedulers (deepspeed/runtime/lr_schedules.py):
 * - `last_batch_iteration` starts at -1 (a fresh run); each `step()` advances it by one and writes the lr for
 *   the new value into every param group, so the first step() after construction applies iteration 0.
 * - A scheduler built with `last_batch_iteration` -1 writes its initial lr at construction; one built to
 *   resume (any other value) leaves the optimizer's lr alone until the next step().
 * - The state dict is `{ last_batch_iteration }`, so DeepSpeed scheduler state loads as is.
 */
import { ConfigError, type ConfigIssue, ZeroFlowError } from '../errors.js';
import type { FlatOptimizer, LRScheduler } from './types.js';

/** The config path of scheduler params, used in error messages. */
export const SCHEDULER_PARAMS_PATH = 'scheduler.params';

/**
 * One value per param group from DeepSpeed's `float or list` params (already validated by the scheduler
 * schema, which cannot know the group count): a number is repeated, a list must have one value per group.
 *
 * @throws ConfigError naming every list of the wrong length
 */
export function perGroupValues<K extends string>(
  groupCount: number,
  values: Record<K, number | number[]>,
): Record<K, number[]> {
  const issues: ConfigIssue[] = [];
  const out = {} as Record<K, number[]>;
  for (const key of Object.keys(values) as K[]) {
    const v = values[key];
    if (Array.isArray(v) && v.length !== groupCount) {
      issues.push({
        path: `${SCHEDULER_PARAMS_PATH}.${key}`,
        value: v,
        rule: `must be a number or a list of ${groupCount} numbers (one per param group)`,
      });
    }
    out[key] = Array.isArray(v) ? [...v] : new Array<number>(groupCount).fill(v);
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return out;
}

function checkIteration(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < -1) {
    throw new ZeroFlowError(`${where}: last_batch_iteration must be an integer >= -1, got ${String(value)}.`);
  }
  return value;
}

/** Base class: subclasses compute the lr of each group for `lastBatchIteration`. */
export abstract class LRSchedulerBase implements LRScheduler {
  abstract readonly type: string;
  protected readonly optimizer: FlatOptimizer;
  protected lastBatchIteration: number;

  protected constructor(optimizer: FlatOptimizer, lastBatchIteration: number) {
    this.optimizer = optimizer;
    this.lastBatchIteration = checkIteration(lastBatchIteration, 'LR scheduler');
  }

  /** The lr of every param group at `lastBatchIteration`. */
  protected abstract computeLr(): number[];

  /** The index of the last batch the schedule has been applied for (-1 before the first step). */
  getLastBatchIteration(): number {
    return this.lastBatchIteration;
  }

  /**
   * Advances the schedule (call once after each optimizer step) and writes the new lr into the param groups.
   * @param batchIteration set the iteration instead of advancing by one, as DeepSpeed's step(last_batch_iteration)
   */
  step(batchIteration?: number): void {
    this.lastBatchIteration =
      batchIteration === undefined ? this.lastBatchIteration + 1 : checkIteration(batchIteration, this.type);
    this.applySchedule();
  }

  /** Subclasses call this last in their constructor: a fresh schedule (-1) writes its initial lr. */
  protected initializeSchedule(): void {
    if (this.lastBatchIteration === -1) this.applySchedule();
  }

  /** Writes the schedule's values for `lastBatchIteration` (the initial ones at -1) into the param groups. */
  protected applySchedule(): void {
    const lrs = this.computeLr();
    const groups = this.optimizer.paramGroups;
    for (let i = 0; i < groups.length; i++) groups[i].lr = lrs[i];
  }

  getLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): Record<string, unknown> {
    return { last_batch_iteration: this.lastBatchIteration };
  }

  /**
   * Restores `last_batch_iteration` and re-applies the schedule for it, so the param groups agree with the
   * scheduler whichever of optimizer and scheduler state is loaded first. (DeepSpeed only restores the
   * counter; the values written are the ones the saved run last wrote, so resuming is unchanged.)
   */
  loadStateDict(state: Record<string, unknown>): void {
    this.lastBatchIteration = checkIteration(state.last_batch_iteration, `${this.type}.loadStateDict`);
    this.applySchedule();
  }
}
