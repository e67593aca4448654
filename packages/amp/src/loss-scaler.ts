/**
 * DeepSpeed's loss scalers (deepspeed/runtime/fp16/loss_scaler.py), with the same state and transitions so
 * that a run's scale history matches DeepSpeed's step for step.
 */

import { ZeroFlowError } from '@zeroflow/core';

/**
 * Thrown when an overflow happens while the dynamic scale already sits at `min_loss_scale` and the scaler
 * is told to fail there (DeepSpeed's ZeRO default, `raise_error_at_min_scale=True`).
 */
export class LossScaleAtMinimumError extends ZeroFlowError {}

/** What a dynamic scaler does on an overflow when the scale already equals `minScale`. */
export type MinScalePolicy = 'error' | 'clamp';

/** Options of `DynamicLossScaler`, named after DeepSpeed's `dynamic_loss_args` and the fp16 config keys. */
export interface DynamicLossScalerOptions {
  /** Starting scale: 2^initial_scale_power. */
  initScale: number;
  /** `loss_scale_window`: clean steps after an overflow before the scale doubles (and then every window). */
  scaleWindow: number;
  /** `min_loss_scale`: the scale never halves below this. */
  minScale: number;
  /** `hysteresis` (DeepSpeed's `delayed_shift`): overflows tolerated before the scale halves. */
  hysteresis: number;
  /** `consecutive_hysteresis`: refill the hysteresis on every clean step instead of only when the scale doubles. */
  consecutiveHysteresis: boolean;
  /**
   * On an overflow at `minScale`: `'error'` throws `LossScaleAtMinimumError` (DeepSpeed's ZeRO optimizers,
   * which create the scaler with `raise_error_at_min_scale=True`); `'clamp'` keeps the scale at `minScale`,
   * skips the step and goes on (DeepSpeed's non-ZeRO FP16_Optimizer). Default `'error'`.
   */
  onMinScale?: MinScalePolicy;
  /** Multiplier of each change; DeepSpeed fixes it at 2. */
  scaleFactor?: number;
}

/** Checkpointed state of a loss scaler (JSON-able). */
export interface LossScalerState {
  dynamic: boolean;
  curScale: number;
  curIter: number;
  lastOverflowIter: number;
  curHysteresis: number;
  skippedSteps: number;
}

/** The common surface of the static and dynamic scalers. */
export interface LossScaler {
  /** True for `DynamicLossScaler`. */
  readonly dynamic: boolean;
  /** The factor the loss (its backward cotangent) is multiplied by. */
  readonly lossScale: number;
  /** Optimizer steps skipped because of an overflow. */
  readonly skippedSteps: number;
  /** Records one optimizer step; `overflow` means its gradients had inf/NaN and the step was skipped. */
  update(overflow: boolean): void;
  stateDict(): LossScalerState;
  loadStateDict(state: LossScalerState): void;
}

/** A fixed scale (`fp16.loss_scale > 0`); overflowing steps are still skipped and counted. */
export class StaticLossScaler implements LossScaler {
  readonly dynamic = false;
  private iter = 0;
  private skipped = 0;

  constructor(private scale: number) {
    if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`static loss scale must be > 0, got ${scale}`);
  }

  get lossScale(): number {
    return this.scale;
  }

  get skippedSteps(): number {
    return this.skipped;
  }

  update(overflow: boolean): void {
    if (overflow) this.skipped++;
    this.iter++;
  }

  stateDict(): LossScalerState {
    return {
      dynamic: false,
      curScale: this.scale,
      curIter: this.iter,
      lastOverflowIter: -1,
      curHysteresis: 1,
      skippedSteps: this.skipped,
    };
  }

  loadStateDict(state: LossScalerState): void {
    this.scale = state.curScale;
    this.iter = state.curIter;
    this.skipped = state.skippedSteps;
  }
}

/**
 * DeepSpeed's `DynamicLossScaler`: start high, halve on overflow once the hysteresis is used up, double after
 * `scaleWindow` clean steps. The transitions, exactly as DeepSpeed's `update_scale`:
 *
 * - overflow, and `hysteresis == 1` or `curHysteresis == 1`: if the scale already equals `minScale` and the
 *   policy is `'error'`, throw; otherwise `scale = max(scale / 2, minScale)`. The hysteresis is NOT refilled
 *   here, so further overflows keep halving until a refill.
 * - overflow otherwise: `curHysteresis -= 1`, the scale stays.
 * - every overflow: `lastOverflowIter = curIter`.
 * - clean step: with `consecutiveHysteresis` the hysteresis is refilled. Then with
 *   `stable = curIter - lastOverflowIter - 1`, if `stable > 0 && stable % scaleWindow == 0` the scale doubles
 *   (and, without `consecutiveHysteresis`, the hysteresis is refilled).
 * - `curIter += 1` after every update.
 *
 * Note that `stable` counts clean updates before the current one, so the first doubling comes on the
 * (`scaleWindow` + 1)-th clean step after an overflow (or after the start), as in DeepSpeed.
 */
export class DynamicLossScaler implements LossScaler {
  readonly dynamic = true;
  private curScale: number;
  private curIter = 0;
  private lastOverflowIter = -1;
  private curHysteresis: number;
  private skipped = 0;
  private readonly opts: Required<DynamicLossScalerOptions>;

  constructor(options: DynamicLossScalerOptions) {
    this.opts = { onMinScale: 'error', scaleFactor: 2, ...options };
    const { initScale, scaleWindow, minScale, hysteresis } = this.opts;
    if (!(initScale > 0) || !Number.isFinite(initScale))
      throw new RangeError(`initScale must be > 0, got ${initScale}`);
    if (!(scaleWindow > 0)) throw new RangeError(`scaleWindow (loss_scale_window) must be > 0, got ${scaleWindow}`);
    if (!(minScale > 0)) throw new RangeError(`minScale (min_loss_scale) must be > 0, got ${minScale}`);
    if (!Number.isInteger(hysteresis) || hysteresis < 1)
      throw new RangeError(`hysteresis must be an integer >= 1, got ${hysteresis}`);
    this.curScale = initScale;
    this.curHysteresis = hysteresis;
  }

  get lossScale(): number {
    return this.curScale;
  }

  get skippedSteps(): number {
    return this.skipped;
  }

  /** Overflows still tolerated before the next one halves the scale. */
  get hysteresisLeft(): number {
    return this.curHysteresis;
  }

  /** Updates recorded so far (DeepSpeed's `cur_iter`). */
  get iteration(): number {
    return this.curIter;
  }

  update(overflow: boolean): void {
    const o = this.opts;
    if (overflow) {
      if (o.hysteresis === 1 || this.curHysteresis === 1) {
        if (this.curScale === o.minScale && o.onMinScale === 'error') {
          throw new LossScaleAtMinimumError(
            `fp16 gradients overflowed with the loss scale already at min_loss_scale (${o.minScale}); ` +
              'the run cannot recover by scaling down. Lower the learning rate, enable gradient_clipping, ' +
              'use bf16, or lower fp16.min_loss_scale.',
          );
        }
        this.curScale = Math.max(this.curScale / o.scaleFactor, o.minScale);
      } else {
        this.curHysteresis--;
      }
      this.lastOverflowIter = this.curIter;
      this.skipped++;
    } else {
      if (o.consecutiveHysteresis) this.curHysteresis = o.hysteresis;
      const stable = this.curIter - this.lastOverflowIter - 1;
      if (stable > 0 && stable % o.scaleWindow === 0) {
        if (!o.consecutiveHysteresis) this.curHysteresis = o.hysteresis;
        this.curScale *= o.scaleFactor;
      }
    }
    this.curIter++;
  }

  stateDict(): LossScalerState {
    return {
      dynamic: true,
      curScale: this.curScale,
      curIter: this.curIter,
      lastOverflowIter: this.lastOverflowIter,
      curHysteresis: this.curHysteresis,
      skippedSteps: this.skipped,
    };
  }

  loadStateDict(state: LossScalerState): void {
    if (!state.dynamic) throw new ZeroFlowError('checkpoint holds a static loss scaler, this run uses dynamic scaling');
    this.curScale = state.curScale;
    this.curIter = state.curIter;
    this.lastOverflowIter = state.lastOverflowIter;
    this.curHysteresis = state.curHysteresis;
    this.skipped = state.skippedSteps;
  }
}
