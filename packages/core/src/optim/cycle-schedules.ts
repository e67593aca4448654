/**
 * DeepSpeed's OneCycle and LRRangeTest schedulers (deepspeed/runtime/lr_schedules.py), same parameter names,
 * defaults and formulas.
 */
import { resolveSchedulerParams } from '../config/sections/scheduler.js';
import { LRSchedulerBase, perGroupValues } from './lr-scheduler-base.js';
import type { FlatOptimizer } from './types.js';

/** Params of OneCycle (DeepSpeed names). */
export interface OneCycleParams {
  /** Lower lr bound, one value or one per group. Required. */
  cycle_min_lr: number | number[];
  /** Upper lr bound. Required. */
  cycle_max_lr: number | number[];
  /** After the cycle, lr = cycle_min_lr / (1 + decay_lr_rate * k / decay_step_size) at k steps past it. Default 0. */
  decay_lr_rate?: number;
  /** Steps of the rising half. Default 2000. */
  cycle_first_step_size?: number;
  /** Steps of the falling half. Default: cycle_first_step_size. */
  cycle_second_step_size?: number | null;
  /** Stairs of the rising half (0: continuous). Default 0. */
  cycle_first_stair_count?: number;
  /** Stairs of the falling half. Default: cycle_first_stair_count. */
  cycle_second_stair_count?: number | null;
  /** Steps per decay interval after the cycle; 0 disables the decay. Default 0. */
  decay_step_size?: number;
  /** Cycle momentum inversely to the lr. Default true. */
  cycle_momentum?: boolean;
  cycle_min_mom?: number | number[];
  cycle_max_mom?: number | number[];
  /** After the cycle, momentum = cycle_max_mom * (1 + decay_mom_rate * k / decay_step_size). Default 0. */
  decay_mom_rate?: number;
  last_batch_iteration?: number;
}

/** Where OneCycle writes momentum: Adam-family groups have betas, SGD groups have momentum. */
type MomentumTarget = 'betas' | 'momentum' | 'none';

/**
 * The 1cycle policy: the lr rises from cycle_min_lr to cycle_max_lr over cycle_first_step_size steps, falls back
 * over cycle_second_step_size steps, then optionally decays. Momentum moves the opposite way between
 * cycle_max_mom and cycle_min_mom, written to `betas[0]` of Adam-family groups (keeping their beta2) and to
 * `momentum` of SGD groups.
 *
 * Differences from DeepSpeed, both deliberate: DeepSpeed sets betas to (momentum, 0.99), overwriting the
 * configured beta2; and it disables momentum cycling for optimizers without betas (SGD), where we cycle
 * `momentum` as the 1cycle paper and torch's OneCycleLR do.
 */
export class OneCycle extends LRSchedulerBase {
  readonly type = 'OneCycle';
  private readonly minLrs: number[];
  private readonly maxLrs: number[];
  private readonly minMoms: number[];
  private readonly maxMoms: number[];
  private readonly totalSize: number;
  private readonly stepRatio: number;
  private readonly firstStepSize: number;
  private readonly secondStepSize: number;
  private readonly firstStairCount: number;
  private readonly secondStairCount: number;
  private readonly decayStepSize: number;
  private readonly decayLrRate: number;
  private readonly decayMomRate: number;
  private readonly skipLrDecay: boolean;
  private readonly skipMomDecay: boolean;
  /** Where momentum is written; 'none' when cycle_momentum is false or the optimizer has no momentum. */
  readonly momentumTarget: MomentumTarget;

  /** @throws ConfigError for an unknown key, a missing cycle_min_lr/cycle_max_lr or an invalid value */
  constructor(optimizer: FlatOptimizer, params: OneCycleParams) {
    const p = resolveSchedulerParams('OneCycle', params);
    super(optimizer, p.last_batch_iteration);
    const perGroup = perGroupValues(optimizer.paramGroups.length, {
      cycle_min_lr: p.cycle_min_lr,
      cycle_max_lr: p.cycle_max_lr,
      cycle_min_mom: p.cycle_min_mom,
      cycle_max_mom: p.cycle_max_mom,
    });
    this.minLrs = perGroup.cycle_min_lr;
    this.maxLrs = perGroup.cycle_max_lr;
    this.minMoms = perGroup.cycle_min_mom;
    this.maxMoms = perGroup.cycle_max_mom;
    this.decayLrRate = p.decay_lr_rate;
    this.firstStepSize = p.cycle_first_step_size;
    // The schema fills both second-half values from the first half (DeepSpeed's defaults).
    this.secondStepSize = p.cycle_second_step_size ?? p.cycle_first_step_size;
    this.firstStairCount = p.cycle_first_stair_count;
    this.secondStairCount = p.cycle_second_stair_count ?? p.cycle_first_stair_count;
    this.decayStepSize = p.decay_step_size;
    const cycleMomentum = p.cycle_momentum;
    this.decayMomRate = p.decay_mom_rate;

    this.totalSize = this.firstStepSize + this.secondStepSize;
    this.stepRatio = this.firstStepSize / this.totalSize;
    // As DeepSpeed: no decay when decay_step_size is 0, or when the respective rate is 0.
    this.skipLrDecay = this.decayStepSize === 0 || this.decayLrRate === 0;
    this.skipMomDecay = this.decayStepSize === 0 || this.decayMomRate === 0;
    const first = optimizer.paramGroups[0];
    this.momentumTarget = !cycleMomentum
      ? 'none'
      : first.betas !== undefined
        ? 'betas'
        : first.momentum !== undefined
          ? 'momentum'
          : 'none';
    this.initializeSchedule();
  }

  /** Position in the cycle in [0, 1]: 0 at cycle_min_lr, 1 at cycle_max_lr. */
  private scaleFactor(): number {
    const batch = this.lastBatchIteration + 1;
    const cycle = Math.floor(1 + batch / this.totalSize);
    const x = 1 + batch / this.totalSize - cycle;
    let scale: number;
    let stairs: number;
    if (x <= this.stepRatio) {
      scale = x / this.stepRatio;
      stairs = this.firstStairCount;
    } else {
      scale = (x - 1) / (this.stepRatio - 1);
      stairs = this.secondStairCount;
    }
    if (stairs > 0) {
      // Quantised from the integer batch offset, as DeepSpeed does, so a stair boundary is never missed by
      // floating-point error in `scale`.
      const inCycle = batch % this.totalSize;
      const position =
        inCycle <= this.firstStepSize
          ? (inCycle * stairs) / this.firstStepSize
          : ((this.totalSize - inCycle) * stairs) / this.secondStepSize;
      scale = Math.floor(position) / stairs;
    }
    return scale;
  }

  /** Steps completed after the cycle ended (> 0), or 0 while still in the cycle. */
  private decayIteration(): number {
    return this.lastBatchIteration < this.totalSize ? 0 : this.lastBatchIteration - this.totalSize + 1;
  }

  protected computeLr(): number[] {
    const k = this.decayIteration();
    if (k === 0) {
      const scale = this.scaleFactor();
      return this.minLrs.map((min, i) => min + (this.maxLrs[i] - min) * scale);
    }
    if (this.skipLrDecay) return [...this.minLrs];
    const factor = 1 + this.decayLrRate * (k / this.decayStepSize);
    return this.minLrs.map((min) => min / factor);
  }

  /** The momentum of each group at `lastBatchIteration` (cycle_min_mom before the first step). */
  computeMomentum(): number[] {
    if (this.lastBatchIteration === -1) return [...this.minMoms];
    const k = this.decayIteration();
    if (k === 0) {
      const scale = this.scaleFactor();
      return this.maxMoms.map((max, i) => max - (max - this.minMoms[i]) * scale);
    }
    if (this.skipMomDecay) return [...this.maxMoms];
    const factor = 1 + this.decayMomRate * (k / this.decayStepSize);
    return this.maxMoms.map((max) => max * factor);
  }

  protected override applySchedule(): void {
    const groups = this.optimizer.paramGroups;
    const lrs = this.lastBatchIteration === -1 ? this.minLrs : this.computeLr();
    for (let i = 0; i < groups.length; i++) groups[i].lr = lrs[i];
    if (this.momentumTarget === 'none') return;
    const moms = this.computeMomentum();
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (this.momentumTarget === 'betas') g.betas = [moms[i], g.betas?.[1] ?? 0.999];
      else g.momentum = moms[i];
    }
  }
}

/** Params of LRRangeTest (DeepSpeed names). */
export interface LRRangeTestParams {
  /** Starting lr, one value or one per group. Default 0.001. */
  lr_range_test_min_lr?: number | number[];
  /** Steps per lr increase interval, an integer > 0. Default 2000. */
  lr_range_test_step_size?: number;
  /** Increase per interval. Default 1.0. */
  lr_range_test_step_rate?: number;
  /** Increase in whole intervals instead of continuously. Default false. */
  lr_range_test_staircase?: boolean;
  last_batch_iteration?: number;
}

/**
 * The LR range test: lr = lr_range_test_min_lr * (1 + step_rate * interval), interval = (t + 1) / step_size
 * (floored when staircase), to find the largest lr that still trains.
 */
export class LRRangeTest extends LRSchedulerBase {
  readonly type = 'LRRangeTest';
  private readonly minLrs: number[];
  private readonly stepSize: number;
  private readonly stepRate: number;
  private readonly staircase: boolean;

  /** @throws ConfigError for an unknown key or an invalid value */
  constructor(optimizer: FlatOptimizer, params: LRRangeTestParams = {}) {
    const p = resolveSchedulerParams('LRRangeTest', params);
    super(optimizer, p.last_batch_iteration);
    const n = optimizer.paramGroups.length;
    this.minLrs = perGroupValues(n, { lr_range_test_min_lr: p.lr_range_test_min_lr }).lr_range_test_min_lr;
    this.stepSize = p.lr_range_test_step_size;
    this.stepRate = p.lr_range_test_step_rate;
    this.staircase = p.lr_range_test_staircase;
    this.initializeSchedule();
  }

  protected computeLr(): number[] {
    const ratio = (this.lastBatchIteration + 1) / this.stepSize;
    const interval = this.staircase ? Math.floor(ratio) : ratio;
    const increase = 1 + this.stepRate * interval;
    return this.minLrs.map((lr) => lr * increase);
  }
}
