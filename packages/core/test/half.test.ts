import { describe, expect, it } from 'vitest';
import {
  bf16ToFp32,
  fp16ToFp32,
  fp32Bits,
  fp32FromBits,
  fp32ToBf16,
  fp32ToFp16,
  type HalfFormat,
  narrow,
  roundInPlace,
  widen,
} from '../src/numeric/half.js';

// ------------------------------------------------------------------ independent float64 references
// These decode and round with float64 arithmetic on values (powers of two, floor, comparisons), never with
// the bit tricks of the implementation, so a shared mistake is unlikely.

/** Value of a 16-bit pattern from the format's definition. */
function refDecode(h: number, format: HalfFormat): number {
  const [expBits, mantBits, bias] = format === 'fp16' ? [5, 10, 15] : [8, 7, 127];
  const sign = h >> 15 ? -1 : 1;
  const e = (h >> mantBits) & ((1 << expBits) - 1);
  const m = h & ((1 << mantBits) - 1);
  if (e === (1 << expBits) - 1) return m === 0 ? sign * Infinity : Number.NaN;
  if (e === 0) return sign * m * 2 ** (1 - bias - mantBits);
  return sign * (1 + m / 2 ** mantBits) * 2 ** (e - bias);
}

/** `v` rounded to the nearest `format` value, ties to even (inf on overflow), as a float64. */
function refRound(v: number, format: HalfFormat): number {
  if (Number.isNaN(v) || !Number.isFinite(v) || v === 0) return v;
  const [mantBits, minExp, maxFinite] = format === 'fp16' ? [10, -14, 65504] : [7, -126, (2 - 2 ** -7) * 2 ** 127];
  const a = Math.abs(v);
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  if (2 ** (e + 1) <= a) e++;
  const quantum = 2 ** (Math.max(e, minExp) - mantBits);
  const q = a / quantum; // exact: dividing by a power of two
  let r = Math.floor(q);
  const frac = q - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r++;
  const out = r * quantum;
  const signed = out > maxFinite ? Infinity : out;
  return v < 0 ? -signed : signed;
}

function sameValue(a: number, b: number): boolean {
  return Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));
}

// A deterministic PRNG for bit patterns (xorshift32).
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>>= 0);
  };
}

for (const format of ['fp16', 'bf16'] as const) {
  const toHalf = format === 'fp16' ? fp32ToFp16 : fp32ToBf16;
  const toFloat = format === 'fp16' ? fp16ToFp32 : bf16ToFp32;

  describe(`${format} conversions`, () => {
    it('decodes all 65,536 patterns as the format defines them, and round-trips every one', () => {
      const all = new Uint16Array(65536).map((_, i) => i);
      const wide = widen(all, format);
      const back = narrow(wide, format);
      for (let h = 0; h < 65536; h++) {
        const ref = refDecode(h, format);
        if (!sameValue(wide[h], ref)) throw new Error(`${format} ${h.toString(16)}: ${wide[h]} != ${ref}`);
        if (!sameValue(toFloat(h), ref)) throw new Error(`${format} scalar ${h.toString(16)}`);
        if (Number.isNaN(ref)) {
          expect(Number.isNaN(fp32FromBits(fp32Bits(wide[h])))).toBe(true);
          // NaN stays NaN with its sign, made quiet; a quiet NaN round-trips bit for bit
          const quietBit = format === 'fp16' ? 0x200 : 0x40;
          expect(back[h]).toBe(h | quietBit);
        } else if (back[h] !== h) {
          throw new Error(`${format} ${h.toString(16)} round-tripped to ${back[h].toString(16)}`);
        }
      }
    });

    it('rounds millions of random fp32 values exactly like the float64 reference', () => {
      const n = 1 << 21;
      const rnd = xorshift(format === 'fp16' ? 12345 : 678);
      const src = new Float32Array(2 * n);
      const bits = new Uint32Array(src.buffer);
      // half uniform over all bit patterns (every exponent, NaN, inf, fp32 subnormals) ...
      for (let i = 0; i < n; i++) bits[i] = rnd();
      // ... half concentrated where the format's normals, subnormals and overflow edge live
      const [lo, span] = format === 'fp16' ? [100, 46] : [0, 255];
      for (let i = n; i < 2 * n; i++) {
        const r = rnd();
        bits[i] = (r & 0x807fffff) | (((lo + (rnd() % span)) & 0xff) << 23);
      }
      const halves = narrow(src, format);
      const rounded = roundInPlace(src.slice(), format);
      let checked = 0;
      for (let i = 0; i < src.length; i++) {
        const ref = refRound(src[i], format);
        const got = toFloat(halves[i]);
        if (!sameValue(got, ref))
          throw new Error(`${format}(${src[i]}) bits ${bits[i].toString(16)}: ${got} != ${ref}`);
        if (!sameValue(rounded[i], ref)) throw new Error(`${format} roundInPlace(${src[i]}): ${rounded[i]} != ${ref}`);
        checked++;
      }
      expect(checked).toBe(2 * n);
      // the scalar path agrees with the bulk path
      for (let i = 0; i < 1000; i++) expect(toHalf(src[i])).toBe(halves[i]);
    });

    it('handles special values and ties', () => {
      const min = format === 'fp16' ? 2 ** -24 : 2 ** -133;
      const minNormal = format === 'fp16' ? 2 ** -14 : 2 ** -126;
      const max = format === 'fp16' ? 65504 : (2 - 2 ** -7) * 2 ** 127;
      const ulpAtOne = format === 'fp16' ? 2 ** -10 : 2 ** -7;
      const cases: [number, number][] = [
        [0, 0],
        [-0, -0],
        [Infinity, Infinity],
        [-Infinity, -Infinity],
        [max, max],
        [-max, -max],
        [minNormal, minNormal],
        [min, min],
        [-min, -min],
        [min / 2, 0], // tie between 0 and the smallest subnormal: to even (0)
        [-min / 2, -0],
        [min * 1.5, min * 2], // tie between 1 and 2 subnormal units: to even (2)
        [1 + ulpAtOne / 2, 1], // tie: to even (1)
        [1 + ulpAtOne * 1.5, 1 + 2 * ulpAtOne], // tie: to even (odd -> up)
        [1 + ulpAtOne / 2 + ulpAtOne / 64, 1 + ulpAtOne], // just above a tie: up
      ];
      if (format === 'fp16') {
        cases.push([65519, 65504], [65520, Infinity], [-65520, -Infinity], [1e6, Infinity], [1e-8, 0], [6e-8, min]);
      } else {
        cases.push([3.4028234663852886e38, Infinity], [1e-45, 0]); // fp32 max rounds up; fp32 min subnormal flushes
      }
      for (const [x, want] of cases) expect(Object.is(toFloat(toHalf(x)), want), `${format}(${x})`).toBe(true);
      expect(Number.isNaN(toFloat(toHalf(Number.NaN)))).toBe(true);
      // NaN keeps its sign through the bulk path (bits handled without passing through a JS number)
      const negNaN = new Float32Array(new Uint32Array([0xffc00001]).buffer);
      expect(narrow(negNaN, format)[0] >> 15).toBe(1);
      expect(Number.isNaN(widen(narrow(negNaN, format), format)[0])).toBe(true);
    });

    it('works on views with an offset and into a given destination', () => {
      const buf = new Float32Array([7, 1.5, -2.25, 3e-5, 8]);
      const view = buf.subarray(1, 4);
      const dst = new Uint16Array(3);
      expect(narrow(view, format, dst)).toBe(dst);
      expect(Array.from(widen(dst, format))).toEqual([1.5, -2.25, toFloat(toHalf(3e-5))]);
      expect(() => narrow(buf, format, dst)).toThrow(RangeError);
      roundInPlace(view, format);
      expect(buf[0]).toBe(7);
      expect(buf[4]).toBe(8);
    });
  });
}
