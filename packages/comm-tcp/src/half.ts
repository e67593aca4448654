/**
 * Exact fp16 / bf16 <-> fp32 conversions (round to nearest, ties to even), for reducing 16-bit buffers in
 * fp32. Small and self-contained on purpose: the canonical converters will live in another package.
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** fp16 bit pattern -> fp32 value, one entry per pattern (256 KiB, exact). */
export const FP16_TO_FP32: Float32Array = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) {
      u32[0] = sign | 0x7f800000 | (mant << 13); // inf / NaN keep their payload
      table[h] = f32[0];
    } else if (exp === 0) {
      table[h] = (sign ? -1 : 1) * mant * 2 ** -24; // zero and subnormals
    } else {
      u32[0] = sign | ((exp - 15 + 127) << 23) | (mant << 13);
      table[h] = f32[0];
    }
  }
  return table;
})();

/** fp16 bit pattern -> number. */
export function fp16ToFloat(h: number): number {
  return FP16_TO_FP32[h & 0xffff];
}

/** number -> fp16 bit pattern, rounded to nearest even; overflow gives inf, NaN stays NaN. */
export function floatToFp16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // re-biased exponent (127 - 15)
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // subnormal result: value = m * 2^-24 with m = full mantissa >> (14 - e)
    const shift = 14 - e;
    if (shift > 24) return sign; // below half the smallest subnormal
    const full = mant | 0x800000;
    let m = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (m & 1) === 1)) m++;
    return sign | m;
  }
  let h = sign | (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // a carry out of the mantissa correctly bumps the exponent (up to inf)
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return h;
}

/** bf16 bit pattern -> number (the upper half of an fp32). */
export function bf16ToFloat(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}

/** number -> bf16 bit pattern, rounded to nearest even; NaN stays a quiet NaN. */
export function floatToBf16(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}
