/**
 * Shared behaviour of DeepSpeed's LR schedulers (deepspeed/runtime/lr_schedules.py):
 * - `last_batch_iteration` starts at -1 (a fresh run); each `step()` advances it by one and writes the lr for
 *   the new value into every param group, so the first step() after construction applies iteration 0.
 * - A scheduler built with `last_batch_iteration` -1 writes its initial lr at construction; one built to
 *   resume (any other value) leaves the optimizer's lr alone until the next step().
 * - The state dict is `{ last_batch_iteration }`, so DeepSpeed scheduler state loads as is.
 */
import { ZeroFlowError } from '../errors.js';
import { ConfigReader } from './config-reader.js';
import type { FlatOptimizer, LRScheduler } from './types.js';

/** The config path of scheduler params, used in error messages. */
export const SCHEDULER_PARAMS_PATH = 'scheduler.params';

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

  /** A reader over `params` that rejects keys other than `keys` and `last_batch_iteration`. */
  protected static reader(params: object, keys: readonly string[]): ConfigReader {
    return new ConfigReader(params as Record<string, unknown>, SCHEDULER_PARAMS_PATH, [
      ...keys,
      'last_batch_iteration',
    ]);
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
