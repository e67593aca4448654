import { type HalfKernels, setHalfKernels } from '@zeroflow/core';
import { type KernelsAddon, loadKernelsAddon } from '@zeroflow/native';

// Native fp32 <-> fp16/bf16 conversions for core's numeric/half.ts (SIMD: AVX-512 / F16C, threaded),
// bit-identical to its TS loops (tested over every 16-bit pattern and millions of random fp32 values).

/** The native 16-bit conversion kernels, or null when the kernels addon is unavailable. */
export function nativeHalfKernels(addon: KernelsAddon | null = loadKernelsAddon()): HalfKernels | null {
  if (!addon || typeof addon.narrow16 !== 'function') return null;
  return {
    narrow: (src, dst, bf16) => addon.narrow16(src, dst, bf16),
    widen: (src, dst, bf16) => addon.widen16(src, dst, bf16),
    roundInPlace: (a, bf16) => addon.round16(a, bf16),
  };
}

/**
 * Hands the native conversions to core (`setHalfKernels`), so that `narrow`, `widen` and `roundInPlace` run
 * them; returns whether it did. ZEROFLOW_NATIVE_HALF=0 keeps core's TS loops.
 */
export function installNativeHalfKernels(addon: KernelsAddon | null = loadKernelsAddon()): boolean {
  if (process.env.ZEROFLOW_NATIVE_HALF === '0') return false;
  const kernels = nativeHalfKernels(addon);
  // An older core without the hook: its TS loops stay.
  if (!kernels || typeof setHalfKernels !== 'function') return false;
  setHalfKernels(kernels);
  return true;
}
