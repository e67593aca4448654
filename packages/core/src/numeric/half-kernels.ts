/**
 * Optional native loops for the bulk 16-bit conversions of `half.ts` (`narrow`, `widen`, `roundInPlace`).
 * Core never depends on native code: `@zeroflow/backend-native` installs them on import when its addon is
 * built, the same way as the flat optimizer kernels (optim/flat-kernels.ts). They must be bit-identical to
 * the TS loops (tested there over every 16-bit pattern and millions of random fp32 values).
 */
export interface HalfKernels {
  /** Narrows src.length fp32 values into dst as fp16 (bf16 when `bf16`) bit patterns. */
  narrow(src: Float32Array, dst: Uint16Array, bf16: boolean): void;
  /** Widens src.length 16-bit patterns into fp32 dst. */
  widen(src: Uint16Array, dst: Float32Array, bf16: boolean): void;
  /** Rounds every value of `a` in place through the 16-bit format. */
  roundInPlace(a: Float32Array, bf16: boolean): void;
}

// On globalThis: the ESM and CJS builds of core must see the same kernels.
const KEY = Symbol.for('zeroflow.halfKernels');
const slot = globalThis as unknown as Record<symbol, HalfKernels | null | undefined>;

/** Installs (null: removes) native 16-bit conversion kernels. */
export function setHalfKernels(kernels: HalfKernels | null): void {
  slot[KEY] = kernels;
}

/** The installed kernels, or null (the TS loops run). */
export function halfKernels(): HalfKernels | null {
  return slot[KEY] ?? null;
}
