import { describe, expect, it } from 'vitest';
import { bf16ToFloat, floatToBf16, floatToFp16, fp16ToFloat } from '../src/half.js';
import { divideInPlace, reducerFor } from '../src/reduce.js';

/** fp32 -> fp16 by arithmetic, as a slow independent reference (round half to even). */
function referenceFp16(x: number): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (Number.isNaN(x)) return 0x7e00;
  if (a >= 65520) return sign | 0x7c00; // 65520 is the midpoint to the next (inf) step
  const e = a < 2 ** -14 ? -14 : Math.floor(Math.log2(a));
  const step = 2 ** (e - 10);
  let q = a / step;
  const fl = Math.floor(q);
  const diff = q - fl;
  q = diff > 0.5 || (diff === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  const v = q * step;
  // re-encode v exactly
  if (v === 0) return sign;
  if (v < 2 ** -14) return sign | (v / 2 ** -24);
  const ee = Math.floor(Math.log2(v));
  return sign | ((ee + 15) << 10) | (v / 2 ** (ee - 10) - 1024);
}

describe('fp16 / bf16 converters', () => {
  it('fp16 -> fp32 -> fp16 is the identity on every non-NaN pattern', () => {
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) {
        expect(Number.isNaN(fp16ToFloat(h))).toBe(true);
        continue;
      }
      expect(floatToFp16(fp16ToFloat(h))).toBe(h);
    }
  });

  it('fp32 -> fp16 rounds to nearest even like an arithmetic reference', () => {
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
    const f = new Float32Array(1);
    for (let i = 0; i < 200_000; i++) {
      f[0] = (rand() - 0.5) * 2 ** Math.floor(rand() * 44 - 28);
      expect(floatToFp16(f[0])).toBe(referenceFp16(f[0]));
    }
    // ties: halfway between 1 and 1+2^-10 goes to even (1); next tie goes up
    expect(floatToFp16(1 + 2 ** -11)).toBe(0x3c00);
    expect(floatToFp16(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(floatToFp16(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal
    expect(floatToFp16(3 * 2 ** -26)).toBe(1);
    expect(floatToFp16(65504)).toBe(0x7bff);
    expect(floatToFp16(65520)).toBe(0x7c00);
    expect(floatToFp16(-Infinity)).toBe(0xfc00);
  });

  it('bf16 is the upper half of fp32 with round to nearest even', () => {
    expect(floatToBf16(1)).toBe(0x3f80);
    expect(bf16ToFloat(0x3f80)).toBe(1);
    expect(floatToBf16(1 + 2 ** -8)).toBe(0x3f80); // tie to even
    expect(floatToBf16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(Number.isNaN(bf16ToFloat(floatToBf16(Number.NaN)))).toBe(true);
    for (let b = 0; b < 65536; b++) {
      if ((b & 0x7f80) === 0x7f80 && (b & 0x7f) !== 0) continue;
      expect(floatToBf16(bf16ToFloat(b))).toBe(b);
    }
  });

  it('16-bit reductions widen, reduce in fp32 and round back; avg divides once', () => {
    const d = new Uint16Array([floatToFp16(1), floatToFp16(2048), floatToFp16(-3)]);
    const s = new Uint16Array([floatToFp16(2 ** -11), floatToFp16(1), floatToFp16(5)]);
    reducerFor('float16', 'sum')(new Uint8Array(d.buffer), new Uint8Array(s.buffer));
    expect([...d].map(fp16ToFloat)).toEqual([1, 2048, 2]); // 1+2^-11 and 2049 round to even
    divideInPlace('float16', new Uint8Array(d.buffer), 3);
    expect(fp16ToFloat(d[2])).toBe(fp16ToFloat(floatToFp16(2 / 3)));
    const i = new Int32Array([2 ** 31 - 1, -7]);
    reducerFor('int32', 'sum')(new Uint8Array(i.buffer), new Uint8Array(new Int32Array([1, 0]).buffer));
    expect(i[0]).toBe(-(2 ** 31)); // wraps like int32
    divideInPlace('int32', new Uint8Array(i.buffer), 2);
    expect(i[1]).toBe(-3); // truncates toward zero
  });
});
