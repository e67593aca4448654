/**
 * DeepSpeed's warmup schedulers: WarmupLR, WarmupDecayLR and WarmupCosineLR, with their parameter names,
 * defaults and formulas (deepspeed/runtime/lr_schedules.py). With t = last_batch_iteration and
 * W = max(2, warmup_num_steps), the warmup fraction for t < W is
 *   log:    ln(t + 1) / ln(W)
 *   linear: t / W
 */
import { resolveSchedulerParams } from '../config/sections/scheduler.js';
import { ZeroFlowError } from '../errors.js';
import { LRSchedulerBase, perGroupValues } from './lr-scheduler-base.js';
import type { FlatOptimizer } from './types.js';

/** How the lr rises during warmup. */
export type WarmupType = 'log' | 'linear';

/** Params of WarmupLR (DeepSpeed names). */
export interface WarmupLRParams {
  /** Initial lr, one value or one per group. Default 0. */
  warmup_min_lr?: number | number[];
  /** Lr reached after warmup. Default (or null): each group's lr when the scheduler is built. */
  warmup_max_lr?: number | number[] | null;
  /** Steps of warmup, an integer > 0 (values below 2 act as 2). Default 1000. */
  warmup_num_steps?: number;
  /** Default 'log'. */
  warmup_type?: WarmupType;
  /** -1 for a fresh run. */
  last_batch_iteration?: number;
}

/** Params of WarmupDecayLR: WarmupLR's, plus the step where the lr reaches 0. */
export interface WarmupDecayLRParams extends WarmupLRParams {
  /** Required. */
  total_num_steps: number;
  /** Lr reached after warmup. Default 0.001 (DeepSpeed's WarmupDecayLR passes it explicitly). */
  warmup_max_lr?: number | number[];
}

/** Params of WarmupCosineLR (ratios of each group's lr when the scheduler is built). */
export interface WarmupCosineLRParams {
  /** Required. */
  total_num_steps: number;
  /** Ratio at the start of warmup. Default 0. */
  warmup_min_ratio?: number;
  /** Default 1000. */
  warmup_num_steps?: number;
  /** Ratio at the end of the cosine. Default 0.0001. */
  cos_min_ratio?: number;
  /** Default 'log'. */
  warmup_type?: WarmupType;
  last_batch_iteration?: number;
}

/** The warmup fraction in [0, 1) for iteration t < warmupSteps. */
function warmupFraction(type: WarmupType, t: number, warmupSteps: number): number {
  // Same arithmetic as DeepSpeed (a precomputed 1/ln(W) times ln(t + 1)), so the values match it bit for bit.
  return type === 'log' ? (1 / Math.log(warmupSteps)) * Math.log(t + 1) : t / warmupSteps;
}

/** Raises each group's lr from warmup_min_lr to warmup_max_lr over warmup_num_steps, then holds it. */
export class WarmupLR extends LRSchedulerBase {
  /** The schema that validates the params: WarmupDecayLR's adds total_num_steps and a warmup_max_lr default. */
  protected static readonly paramsType: 'WarmupLR' | 'WarmupDecayLR' = 'WarmupLR';
  readonly type: string = 'WarmupLR';
  protected readonly minLrs: number[];
  protected readonly maxLrs: number[];
  protected readonly warmupNumSteps: number;
  protected readonly warmupType: WarmupType;

  /** @throws ConfigError for an unknown key or an invalid value (the `scheduler` section's rules) */
  constructor(optimizer: FlatOptimizer, params: WarmupLRParams = {}) {
    const p = resolveSchedulerParams(new.target.paramsType, params);
    super(optimizer, p.last_batch_iteration);
    const groups = optimizer.paramGroups;
    // WarmupLR's warmup_max_lr defaults (null) to each group's lr, as DeepSpeed's.
    const lrs = perGroupValues(groups.length, {
      warmup_min_lr: p.warmup_min_lr,
      warmup_max_lr: p.warmup_max_lr ?? groups.map((g) => g.lr),
    });
    this.minLrs = lrs.warmup_min_lr;
    this.maxLrs = lrs.warmup_max_lr;
    this.warmupNumSteps = Math.max(2, p.warmup_num_steps);
    this.warmupType = p.warmup_type;
    this.initializeSchedule();
  }

  /** The fraction of the way from min to max lr at `lastBatchIteration`. */
  protected gamma(): number {
    const t = this.lastBatchIteration;
    return t < this.warmupNumSteps ? warmupFraction(this.warmupType, t, this.warmupNumSteps) : 1;
  }

  protected computeLr(): number[] {
    if (this.lastBatchIteration < 0) return [...this.minLrs];
    const gamma = this.gamma();
    return this.minLrs.map((min, i) => min + (this.maxLrs[i] - min) * gamma);
  }
}

/** WarmupLR, then a linear decay reaching 0 at total_num_steps. Its warmup_max_lr defaults to 0.001. */
export class WarmupDecayLR extends WarmupLR {
  protected static override readonly paramsType = 'WarmupDecayLR';
  override readonly type: string = 'WarmupDecayLR';
  private readonly totalNumSteps: number;

  /** @throws ConfigError for an unknown key, a missing total_num_steps or an invalid value */
  constructor(optimizer: FlatOptimizer, params: WarmupDecayLRParams) {
    // The base constructor validates every key against WarmupDecayLR's schema (paramsType), whose
    // warmup_max_lr default is DeepSpeed's explicit 0.001; the initial lr does not depend on total_num_steps,
    // which is stored here because subclass fields exist only after super().
    super(optimizer, params);
    this.totalNumSteps = params.total_num_steps;
  }

  protected override gamma(): number {
    const t = this.lastBatchIteration;
    if (t < this.warmupNumSteps) return warmupFraction(this.warmupType, t, this.warmupNumSteps);
    return Math.max(0, (this.totalNumSteps - t) / Math.max(1, this.totalNumSteps - this.warmupNumSteps));
  }
}

/**
 * Warmup from warmup_min_ratio to 1, then a cosine from 1 down to cos_min_ratio at total_num_steps, as
 * ratios of each group's lr at construction (`org_lrs`). The initial lr (iteration -1) is 0.
 */
export class WarmupCosineLR extends LRSchedulerBase {
  readonly type = 'WarmupCosineLR';
  private readonly totalNumSteps: number;
  private readonly warmupMinRatio: number;
  private readonly warmupNumSteps: number;
  private readonly cosMinRatio: number;
  private readonly warmupType: WarmupType;
  private orgLrs: number[];

  /** @throws ConfigError for an unknown key, a missing total_num_steps or an invalid value */
  constructor(optimizer: FlatOptimizer, params: WarmupCosineLRParams) {
    const p = resolveSchedulerParams('WarmupCosineLR', params);
    super(optimizer, p.last_batch_iteration);
    this.totalNumSteps = p.total_num_steps;
    this.warmupMinRatio = p.warmup_min_ratio;
    this.warmupNumSteps = Math.max(2, p.warmup_num_steps);
    this.cosMinRatio = p.cos_min_ratio;
    this.warmupType = p.warmup_type;
    this.orgLrs = optimizer.paramGroups.map((g) => g.lr);
    this.initializeSchedule();
  }

  /** The multiplier of the base lr at `lastBatchIteration`. */
  getLrRatio(): number {
    const t = this.lastBatchIteration;
    if (t < 0) return 0;
    if (t < this.warmupNumSteps) {
      const fraction = warmupFraction(this.warmupType, t, this.warmupNumSteps);
      return this.warmupMinRatio + fraction * (1 - this.warmupMinRatio);
    }
    // Clamped progress: past the end the ratio stays at cos_min_ratio instead of rising again.
    const progress = Math.min(1, (t - this.warmupNumSteps + 1) / Math.max(1, this.totalNumSteps - this.warmupNumSteps));
    const cosine = (1 + Math.cos(Math.PI * progress)) / 2;
    return Math.max(0, this.cosMinRatio + (1 - this.cosMinRatio) * cosine);
  }

  protected computeLr(): number[] {
    const ratio = this.getLrRatio();
    return this.orgLrs.map((lr) => lr * ratio);
  }

  /** Also saves the base lrs, so a scheduler rebuilt after the optimizer state was loaded keeps them. */
  override stateDict(): Record<string, unknown> {
    return { ...super.stateDict(), org_lrs: [...this.orgLrs] };
  }

  /** Accepts DeepSpeed's state (only last_batch_iteration) as well as ours with `org_lrs`. */
  override loadStateDict(state: Record<string, unknown>): void {
    const orgLrs = state.org_lrs;
    if (orgLrs !== undefined) {
      if (
        !Array.isArray(orgLrs) ||
        orgLrs.length !== this.orgLrs.length ||
        !orgLrs.every((x) => typeof x === 'number' && Number.isFinite(x))
      ) {
        throw new ZeroFlowError(
          `WarmupCosineLR.loadStateDict: org_lrs must hold ${this.orgLrs.length} numbers (one per param group).`,
        );
      }
      this.orgLrs = [...orgLrs];
    }
    super.loadStateDict(state);
  }
}
