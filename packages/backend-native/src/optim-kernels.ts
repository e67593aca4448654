import { type FlatKernels, setFlatKernels } from '@zeroflow/core';
import { type KernelsAddon, loadKernelsAddon } from '@zeroflow/native';

// Native update loops for core's flat optimizers and the owners' gradient loops, bit-identical to core's TS loops (packages/core/src/optim)
// whatever the thread count: the addon computes in double with the same expression order.

/** The native optimizer kernels, or null when the kernels addon is unavailable. */
export function nativeFlatKernels(addon: KernelsAddon | null = loadKernelsAddon()): FlatKernels | null {
  if (!addon) return null;
  return {
    adam(params, grads, expAvg, expAvgSq, lr, beta1, beta2, eps, weightDecay, step, adamWMode, biasCorrection, gs) {
      // `1 - beta ** step` in JS, as core computes it: V8's pow and libm's may differ in the last bit.
      const bc1 = biasCorrection ? 1 - beta1 ** step : 1;
      const bc2 = biasCorrection ? 1 - beta2 ** step : 1;
      addon.adamStep(params, grads, expAvg, expAvgSq, lr, beta1, beta2, eps, weightDecay, bc1, bc2, adamWMode, gs ?? 1);
    },
    // an addon built before gradScale ignores the extra argument: core then scales the gradients itself
    adamGradScale: typeof addon.scaleSumSquares === 'function',
    sgd(params, grads, momentumBuffer, lr, momentum, dampening, weightDecay, nesterov, firstStep) {
      addon.sgdStep(params, grads, momentumBuffer, lr, momentum, dampening, weightDecay, nesterov, firstStep);
    },
    // the owners' gradient loops (core's optim/flat-loops.ts): accumulation, unscale + norm, clipping;
    // absent from an addon built before them (core then runs its TS loops)
    ...(typeof addon.scaleSumSquares === 'function'
      ? {
          addInto: (dst: Float32Array, src: Float32Array, fresh: boolean) => addon.addInto(dst, src, fresh),
          scaleSumOfSquares: (x: Float32Array, scale: number) => addon.scaleSumSquares(x, scale),
          scale: (x: Float32Array, scale: number) => addon.scale(x, scale),
        }
      : {}),
  };
}

/**
 * Hands the native optimizer kernels to core (`setFlatKernels`), so that its Adam/AdamW/SGD run them;
 * returns whether it did. ZEROFLOW_NATIVE_OPTIM=0 keeps core's TS loops.
 */
export function installNativeFlatKernels(addon: KernelsAddon | null = loadKernelsAddon()): boolean {
  if (process.env.ZEROFLOW_NATIVE_OPTIM === '0') return false;
  const kernels = nativeFlatKernels(addon);
  if (!kernels) return false;
  setFlatKernels(kernels);
  return true;
}
