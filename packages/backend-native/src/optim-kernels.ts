import * as core from '@zeroflow/core';
import { type KernelsAddon, loadKernelsAddon } from '@zeroflow/native';

/**
 * Native update loops for core's flat-buffer optimizers, bit-identical to core's TS loops
 * (packages/core/src/optim/adam.ts and sgd.ts) whatever the thread count: the addon computes in double with
 * the same expression order, and the bias corrections are computed here in JS exactly as core does.
 */
export interface NativeFlatKernels {
  /** One Adam step in place (AdamW when adamWMode: decoupled weight decay; else L2 added to the gradient). */
  adam(
    params: Float32Array,
    grads: Float32Array,
    expAvg: Float32Array,
    expAvgSq: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
    adamWMode: boolean,
    biasCorrection: boolean,
  ): void;
  /** One SGD step in place (torch.optim.SGD); momentumBuffer may be null when momentum is 0. */
  sgd(
    params: Float32Array,
    grads: Float32Array,
    momentumBuffer: Float32Array | null,
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
    firstStep: boolean,
  ): void;
}

/** The native optimizer kernels, or null when the kernels addon is unavailable. */
export function nativeFlatKernels(addon: KernelsAddon | null = loadKernelsAddon()): NativeFlatKernels | null {
  if (!addon) return null;
  return {
    adam(params, grads, expAvg, expAvgSq, lr, beta1, beta2, eps, weightDecay, step, adamWMode, biasCorrection) {
      // `1 - beta ** step` in JS, as core computes it: V8's pow and libm's may differ in the last bit.
      const bc1 = biasCorrection ? 1 - beta1 ** step : 1;
      const bc2 = biasCorrection ? 1 - beta2 ** step : 1;
      addon.adamStep(params, grads, expAvg, expAvgSq, lr, beta1, beta2, eps, weightDecay, bc1, bc2, adamWMode);
    },
    sgd(params, grads, momentumBuffer, lr, momentum, dampening, weightDecay, nesterov, firstStep) {
      addon.sgdStep(params, grads, momentumBuffer, lr, momentum, dampening, weightDecay, nesterov, firstStep);
    },
  };
}

/**
 * Hands the native optimizer kernels to core when core offers the hook (`setFlatKernels`, see the README),
 * so that its Adam/AdamW/SGD run them; returns whether it did. ZEROFLOW_NATIVE_OPTIM=0 keeps core's TS loops.
 */
export function installNativeFlatKernels(addon: KernelsAddon | null = loadKernelsAddon()): boolean {
  const hook = (core as unknown as { setFlatKernels?: (kernels: NativeFlatKernels | null) => void }).setFlatKernels;
  if (typeof hook !== 'function' || process.env.ZEROFLOW_NATIVE_OPTIM === '0') return false;
  const kernels = nativeFlatKernels(addon);
  if (!kernels) return false;
  hook(kernels);
  return true;
}
