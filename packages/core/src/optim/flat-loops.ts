/**
 * The flat-buffer loops of an optimizer-step owner outside the optimizer itself: gradient accumulation
 * (`addInto`), the unscale + sum of squares of the gradient norm and the clipping scale. Each runs the native
 * kernel when `@zeroflow/backend-native` installed one (flat-kernels.ts) and the buffer is large enough to
 * pay for the call, else the TS loop here; both give the same bits, so results never depend on which ran.
 */
import { flatKernels } from './flat-kernels.js';

/**
 * Elements per block of the sum of squares: block partials are summed in block order, so a native kernel
 * can sum blocks on any number of threads and still reproduce this loop exactly. Native's is the same
 * (native/src/kernels/pointwise.h, kSumSquaresBlock).
 */
export const SUM_SQUARES_BLOCK = 32768;

// Below this many elements the TS loop beats the cost of a native call.
const NATIVE_MIN = 2048;

/**
 * `dst[i] += src[i]` for `i < dst.length`; with `fresh` (dst holds zeros) `dst[i] = src[i] + 0` without
 * reading dst: the bits of adding into zeros (a -0 gradient becomes +0), so that skipping the zero fill of
 * a gradient buffer changes nothing downstream (Adam can tell -0 from +0 in corner cases).
 */
export function addIntoLoop(dst: Float32Array, src: Float32Array, fresh: boolean): void {
  const n = dst.length;
  if (fresh) for (let i = 0; i < n; i++) dst[i] = src[i] + 0;
  else for (let i = 0; i < n; i++) dst[i] += src[i];
}

/**
 * The sum of squares (float64) of `x`, after scaling it in place by `scale` (`x[i] = fround(x[i] * scale)`,
 * skipped when `scale` is 1) and squaring the stored values. The order of the additions is fixed by the
 * length alone: blocks of {@link SUM_SQUARES_BLOCK} elements, each summed over 8 lanes (lane l takes
 * elements 8k + l of the block's full 8-element rows), the lanes added in order, then the block's tail;
 * the block partials are added in order. Lanes make the loop faster than one running sum (independent
 * additions) and let a SIMD kernel reproduce it; squares of floats are exact in float64, so only this
 * order decides the bits.
 */
export function scaleSumOfSquaresLoop(x: Float32Array, scale: number): number {
  const n = x.length;
  let total = 0;
  for (let b = 0; b < n; b += SUM_SQUARES_BLOCK) {
    const end = Math.min(n, b + SUM_SQUARES_BLOCK);
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let s4 = 0;
    let s5 = 0;
    let s6 = 0;
    let s7 = 0;
    let i = b;
    if (scale !== 1) for (let k = b; k < end; k++) x[k] = Math.fround(x[k] * scale);
    for (; i + 8 <= end; i += 8) {
      const v0 = x[i];
      const v1 = x[i + 1];
      const v2 = x[i + 2];
      const v3 = x[i + 3];
      const v4 = x[i + 4];
      const v5 = x[i + 5];
      const v6 = x[i + 6];
      const v7 = x[i + 7];
      s0 += v0 * v0;
      s1 += v1 * v1;
      s2 += v2 * v2;
      s3 += v3 * v3;
      s4 += v4 * v4;
      s5 += v5 * v5;
      s6 += v6 * v6;
      s7 += v7 * v7;
    }
    let s = 0;
    s += s0;
    s += s1;
    s += s2;
    s += s3;
    s += s4;
    s += s5;
    s += s6;
    s += s7;
    for (; i < end; i++) s += x[i] * x[i];
    total += s;
  }
  return total;
}

/** `x[i] *= scale` (rounded to fp32 on store): gradient clipping. */
export function scaleLoop(x: Float32Array, scale: number): void {
  for (let i = 0; i < x.length; i++) x[i] *= scale;
}

/** {@link addIntoLoop}, natively when available. */
export function addIntoFlat(dst: Float32Array, src: Float32Array, fresh: boolean): void {
  const k = dst.length >= NATIVE_MIN ? flatKernels() : null;
  if (k?.addInto) k.addInto(dst, src, fresh);
  else addIntoLoop(dst, src, fresh);
}

/** {@link scaleSumOfSquaresLoop}, natively when available. */
export function scaleSumOfSquares(x: Float32Array, scale: number): number {
  const k = x.length >= NATIVE_MIN ? flatKernels() : null;
  return k?.scaleSumOfSquares ? k.scaleSumOfSquares(x, scale) : scaleSumOfSquaresLoop(x, scale);
}

/** {@link scaleLoop}, natively when available. */
export function scaleFlat(x: Float32Array, scale: number): void {
  const k = x.length >= NATIVE_MIN ? flatKernels() : null;
  if (k?.scale) k.scale(x, scale);
  else scaleLoop(x, scale);
}
