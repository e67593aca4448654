/**
 * The `@zeroflow/amp` plugin: fp16/bf16 parameter storage with fp32 master weights, and DeepSpeed's loss
 * scaling for fp16. Core loads it by name when `fp16.enabled` or `bf16.enabled` is true.
 */

import type { HalfFormat } from '@zeroflow/core';
import {
  type Fp16Config,
  type PluginContext,
  PluginError,
  type StepInfo,
  type StepOutcome,
  type ZeroFlowPlugin,
} from '@zeroflow/core';
import { AMP_SERVICE, type AmpService, createAmpService } from './gradient-rounding.js';
import { HalfParameterAccess } from './half-storage.js';
import {
  DynamicLossScaler,
  type LossScaler,
  type LossScalerState,
  type MinScalePolicy,
  StaticLossScaler,
} from './loss-scaler.js';

/** This package's version (checked by nothing; reported in checkpoints and logs). */
export const AMP_VERSION = '0.1.0';

/**
 * Which of DeepSpeed's two fp16 paths the dynamic scaler follows. DeepSpeed's ZeRO optimizers (stages 1-3)
 * build `DynamicLossScaler` from the fp16 config (hysteresis honoured, error at `min_loss_scale`); its
 * non-ZeRO `FP16_Optimizer` keeps its own scale that halves on every overflow (no hysteresis) and clamps
 * at `min_loss_scale`. Both start at 2^initial_scale_power when configured from JSON.
 */
export type LossScaleProfile = 'zero' | 'fp16-optimizer';

/** Options of `createPlugin` (the config's `fp16`/`bf16` sections, validated by core, do the rest). */
export interface AmpOptions {
  /** Default `'zero'` for every stage, stage 0 included: see README, "Defaults". */
  lossScaleProfile?: LossScaleProfile;
  /** Overrides what an overflow at `min_loss_scale` does (default: `'error'` for `'zero'`, else `'clamp'`). */
  onMinLossScale?: MinScalePolicy;
}

/** What the plugin exposes beyond the plugin interface (tests, tools, owners). */
export interface AmpPlugin extends ZeroFlowPlugin {
  /** The 16-bit format in use, known after setup. */
  readonly format: HalfFormat | null;
  /** The loss scaler (fp16), known after setup; null for bf16. */
  readonly scaler: LossScaler | null;
  /**
   * The parameter access serving 16-bit weights to the forward pass, known after setup; its `attached`
   * storage is the optimizer-step owner's 16-bit flat buffer (the model's only full copy). At ZeRO stage 3
   * it is not installed and nothing is attached: the stage-3 owner's own access widens its 16-bit shards.
   */
  readonly parameters: HalfParameterAccess | null;
}

/** The scaler a fp16 config asks for. */
export function createLossScaler(fp16: Fp16Config, opts: AmpOptions = {}): LossScaler {
  if (fp16.loss_scale > 0) return new StaticLossScaler(fp16.loss_scale);
  const profile = opts.lossScaleProfile ?? 'zero';
  return new DynamicLossScaler({
    initScale: 2 ** fp16.initial_scale_power,
    scaleWindow: fp16.loss_scale_window,
    minScale: fp16.min_loss_scale,
    hysteresis: profile === 'zero' ? fp16.hysteresis : 1,
    consecutiveHysteresis: profile === 'zero' ? fp16.consecutive_hysteresis : false,
    onMinScale: opts.onMinLossScale ?? (profile === 'zero' ? 'error' : 'clamp'),
  });
}

/**
 * Creates the amp plugin. Behaviour, per step:
 * - storage: the optimizer-step owner (stage 0, ZeRO 1/2) finds the `amp` service, keeps the parameters as
 *   a 16-bit flat buffer with fp32 masters for its optimizer partition, and attaches that buffer here. The
 *   ZeRO-3 owner keeps 16-bit shards with fp32 master shards and attaches nothing.
 * - forward: every leaf's weights are the owner's 16-bit values widened to fp32 (amp's parameter access; at
 *   stage 3 the stage-3 gatherer's, which all-gathers 16-bit chunks and widens them per leaf).
 * - backward: the cotangent is multiplied by `lossScale()` (fp16; 1 for bf16).
 * - step: the owner divides the scale out and computes the gradient norm over the reduced gradients;
 *   `checkOverflow` vetoes the step on a non-finite norm. Since the norm is global, every rank decides alike.
 * - after the step: the scaler records the overflow (or not); the owner has rounded the updated fp32
 *   masters into its 16-bit buffer and all-gathered it.
 */
export function createPlugin(options: AmpOptions = {}): AmpPlugin {
  let format: HalfFormat | null = null;
  let scaler: LossScaler | null = null;
  let parameters: HalfParameterAccess | null = null;
  let ctx: PluginContext | null = null;
  let checkBf16Overflow = true;

  const plugin: AmpPlugin = {
    name: '@zeroflow/amp',
    version: AMP_VERSION,
    coreVersion: '^0.1.0',
    provides: ['loss-scaling', 'parameter-storage', AMP_SERVICE],
    // ZeRO-3 stores 16-bit parameter shards and widens gathered weights itself (see setup)
    yields: ['parameter-storage'],
    // Set up before any owner, so owners can find the `amp` service when they are created.
    enforce: 'pre',
    get format() {
      return format;
    },
    get scaler() {
      return scaler;
    },
    get parameters() {
      return parameters;
    },
    setup(c) {
      ctx = c;
      const { fp16, bf16 } = c.config;
      if (fp16.enabled && bf16.enabled) throw new PluginError('@zeroflow/amp: fp16 and bf16 cannot both be enabled');
      if (!fp16.enabled && !bf16.enabled) {
        throw new PluginError(
          '@zeroflow/amp is registered but neither fp16.enabled nor bf16.enabled is true: enable one, or drop the plugin',
        );
      }
      format = fp16.enabled ? 'fp16' : 'bf16';
      checkBf16Overflow = bf16.check_grad_overflow;
      scaler = fp16.enabled ? createLossScaler(fp16, options) : null;
      const access = new HalfParameterAccess(format);
      parameters = access;
      // At ZeRO stage 3 the owner holds the 16-bit shards, gathers 16-bit data and widens each leaf's weights
      // in its own parameter access (the only one: amp yields `parameter-storage`); it never attaches storage.
      if (c.config.zero_optimization.stage !== 3) c.setParameterAccess(access.access());
      // The owner is created after every setup: it attaches its 16-bit buffer through the service.
      const service: AmpService = createAmpService(
        format,
        () => scaler?.lossScale ?? 1,
        (storage) => access.attach(storage),
      );
      c.provideService(AMP_SERVICE, service);
      const scaleNote = scaler
        ? scaler.dynamic
          ? `dynamic loss scale from ${scaler.lossScale}`
          : `static loss scale ${scaler.lossScale}`
        : 'no loss scaling';
      if (c.world.rank === 0) c.log(`${format} parameters and gradients, fp32 master weights, ${scaleNote}`);
    },
    hooks: {
      lossScale() {
        return scaler?.lossScale ?? 1;
      },
      checkOverflow(gradNorm: number) {
        // bf16 needs no scaling but DeepSpeed still skips inf/NaN steps unless check_grad_overflow is off.
        if (format === 'bf16' && !checkBf16Overflow) return false;
        return !Number.isFinite(gradNorm);
      },
      afterStep(info: StepInfo & StepOutcome) {
        if (scaler) {
          const before = scaler.lossScale;
          scaler.update(info.skipped);
          if (info.skipped && ctx && ctx.world.rank === 0) {
            ctx.log(
              `OVERFLOW! skipping step ${info.globalStep - 1}; attempted loss scale ${before}, now ${scaler.lossScale}`,
            );
          }
        }
      },
      stateDict() {
        return { format, scaler: scaler ? scaler.stateDict() : null };
      },
      loadStateDict(state: Record<string, unknown>) {
        const saved = state.scaler as LossScalerState | null | undefined;
        if (scaler && saved) scaler.loadStateDict(saved);
      },
    },
  };
  return plugin;
}

/**
 * A shared instance with default options. Core calls `createPlugin()` (a fresh instance per engine); use this
 * one only for a single engine per process, since it keeps that engine's scaler and parameter access.
 */
export const plugin: AmpPlugin = createPlugin();
