/**
 * Bit-exact conversions between fp32 and the two 16-bit formats ZeroFlow stores and sends (DESIGN.md 4, 7).
 *
 * tfjs has no 16-bit dtype and Node 20 no Float16Array, so a 16-bit tensor is a `Uint16Array` of bit patterns
 * and all compute is fp32. Narrowing rounds to nearest, ties to even (IEEE 754's default, and what PyTorch's
 * `.half()` / `.bfloat16()` do); NaN stays NaN (made quiet, sign kept) and infinities stay infinite.
 *
 * The bulk functions read and write fp32 bit patterns through a `Uint32Array` view of the same memory, so
 * they never allocate per element and never let a NaN payload pass through a JS number (which may
 * canonicalize it).
 *
 * `narrow`, `widen` and `roundInPlace` run native loops (SIMD, threaded) when `@zeroflow/backend-native`
 * installed them (`setHalfKernels`, half-kernels.ts); the results are the same bits either way.
 */

import { halfKernels } from './half-kernels.js';

/** The 16-bit storage formats. */
export type HalfFormat = 'fp16' | 'bf16';

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

/** fp32 bit pattern of `x` (after rounding `x` to fp32). */
export function fp32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

/** The fp32 value of a bit pattern. */
export function fp32FromBits(bits: number): number {
  scratchU32[0] = bits;
  return scratchF32[0];
}

// ---------------------------------------------------------------------------------------------- bf16

/** bf16 bits of an fp32 bit pattern: the upper half, rounded to nearest even. */
function bf16FromFp32Bits(bits: number): number {
  if ((bits & 0x7fffffff) > 0x7f800000) return (bits >>> 16) | 0x0040; // NaN: keep sign and payload top, set quiet bit
  // Adding 0x7fff (+1 when the kept lsb is odd) carries into the kept half exactly when RNE rounds up;
  // a carry out of the largest finite value lands on the infinity pattern, as it should.
  return ((bits >>> 0) + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
}

/** bf16 bit pattern of `x` rounded to nearest even. */
export function fp32ToBf16(x: number): number {
  return bf16FromFp32Bits(fp32Bits(x));
}

/** The fp32 value of a bf16 bit pattern (exact: bf16 is a prefix of fp32). */
export function bf16ToFp32(h: number): number {
  return fp32FromBits((h & 0xffff) << 16);
}

// ---------------------------------------------------------------------------------------------- fp16

/** fp16 bits of an fp32 bit pattern, rounded to nearest even, with subnormals and overflow to infinity. */
function fp16FromFp32Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) {
    // inf, or NaN made quiet with the top of its payload kept
    return abs === 0x7f800000 ? sign | 0x7c00 : sign | 0x7e00 | ((abs >>> 13) & 0x3ff);
  }
  // 65520 is halfway between the largest fp16 (65504, odd significand) and 65536: ties go to even = inf.
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs >= 0x38800000) {
    // normal fp16 (|x| >= 2^-14): rebias the exponent (127 -> 15) and drop 13 significand bits with RNE
    let h = (abs - 0x38000000) >>> 13;
    const rest = abs & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
    return sign | h;
  }
  const exp = abs >>> 23;
  if (exp < 102) return sign; // |x| < 2^-25: below half the smallest subnormal (2^-24)
  // subnormal fp16: the result counts units of 2^-24; the fp32 value is mant * 2^(exp - 150)
  const mant = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exp; // 14..24
  let h = mant >>> shift;
  const rest = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (h & 1) === 1)) h++; // may carry into 0x400, the smallest normal: correct
  return sign | h;
}

/** fp32 bit pattern of an fp16 bit pattern (exact). */
function fp32BitsFromFp16(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf / NaN with its payload
  if (exp !== 0) return (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // subnormal: normalize so the leading 1 becomes the implicit bit
  let e = 113; // fp32 biased exponent of 2^-14
  let m = mant;
  while ((m & 0x400) === 0) {
    m <<= 1;
    e--;
  }
  return (sign | (e << 23) | ((m & 0x3ff) << 13)) >>> 0;
}

/** fp16 bit pattern of `x` rounded to nearest even. */
export function fp32ToFp16(x: number): number {
  return fp16FromFp32Bits(fp32Bits(x));
}

/** The fp32 value of an fp16 bit pattern (exact). */
export function fp16ToFp32(h: number): number {
  return fp32FromBits(fp32BitsFromFp16(h & 0xffff));
}

// A 256 KiB table of every fp16 -> fp32 widening: one load per element in the bulk paths.
let fp16Table: Uint32Array | null = null;
function fp16WideningTable(): Uint32Array {
  if (!fp16Table) {
    fp16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) fp16Table[h] = fp32BitsFromFp16(h);
  }
  return fp16Table;
}

// ---------------------------------------------------------------------------------------------- bulk

function bitsView(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

// Below this many values the TS loop beats the cost of calling into the addon.
const NATIVE_MIN_LENGTH = 256;

function checkLengths(src: { length: number }, dst: { length: number }): void {
  if (dst.length < src.length) throw new RangeError(`destination holds ${dst.length} values, source ${src.length}`);
}

/** Narrows `src` into `dst` (allocated when omitted) as 16-bit patterns of `format`; returns `dst`. */
export function narrow(
  src: Float32Array,
  format: HalfFormat,
  dst: Uint16Array = new Uint16Array(src.length),
): Uint16Array {
  checkLengths(src, dst);
  const n = src.length;
  const native = n >= NATIVE_MIN_LENGTH ? halfKernels() : null;
  if (native) {
    native.narrow(src, dst, format === 'bf16');
    return dst;
  }
  const bits = bitsView(src);
  if (format === 'bf16') for (let i = 0; i < n; i++) dst[i] = bf16FromFp32Bits(bits[i]);
  else for (let i = 0; i < n; i++) dst[i] = fp16FromFp32Bits(bits[i]);
  return dst;
}

/** Widens 16-bit patterns of `format` into fp32 `dst` (allocated when omitted); returns `dst`. */
export function widen(
  src: Uint16Array,
  format: HalfFormat,
  dst: Float32Array = new Float32Array(src.length),
): Float32Array {
  checkLengths(src, dst);
  const n = src.length;
  const native = n >= NATIVE_MIN_LENGTH ? halfKernels() : null;
  if (native) {
    native.widen(src, dst, format === 'bf16');
    return dst;
  }
  const bits = bitsView(dst);
  if (format === 'bf16') {
    for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
  } else {
    const table = fp16WideningTable();
    for (let i = 0; i < n; i++) bits[i] = table[src[i]];
  }
  return dst;
}

/**
 * Rounds every value of `a` in place to the nearest value representable in `format` (narrow, then widen,
 * without a 16-bit buffer): what a value looks like after a round trip through 16-bit storage or the wire.
 */
export function roundInPlace(a: Float32Array, format: HalfFormat): Float32Array {
  const n = a.length;
  const native = n >= NATIVE_MIN_LENGTH ? halfKernels() : null;
  if (native) {
    native.roundInPlace(a, format === 'bf16');
    return a;
  }
  const bits = bitsView(a);
  if (format === 'bf16') {
    for (let i = 0; i < n; i++) bits[i] = bf16FromFp32Bits(bits[i]) << 16;
  } else {
    const table = fp16WideningTable();
    for (let i = 0; i < n; i++) bits[i] = table[fp16FromFp32Bits(bits[i])];
  }
  return a;
}

/** Narrows one fp32 value to `format` bits. */
export function toHalf(x: number, format: HalfFormat): number {
  return format === 'bf16' ? fp32ToBf16(x) : fp32ToFp16(x);
}

/** Widens one `format` bit pattern to its fp32 value. */
export function fromHalf(h: number, format: HalfFormat): number {
  return format === 'bf16' ? bf16ToFp32(h) : fp16ToFp32(h);
}

/** Largest finite value of `format`. */
export function maxFinite(format: HalfFormat): number {
  return format === 'bf16' ? bf16ToFp32(0x7f7f) : 65504;
}
