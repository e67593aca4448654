/**
 * The native fp32 <-> fp16/bf16 conversions against core's TS loops (numeric/half.ts) bit for bit: all 65,536
 * 16-bit patterns (16 -> 32 -> 16), millions of random fp32 bit patterns and the specials (NaN payloads,
 * signalling NaNs, infinities, subnormals, rounding ties), every ISA path the addon was built for, 1 and 3
 * threads; and core's `narrow`/`widen`/`roundInPlace` using them through `setHalfKernels`.
 */
import { spawnSync } from 'node:child_process';
import { halfKernels, narrow, roundInPlace, setHalfKernels, widen } from '@zeroflow/core';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeBackendStatus, nativeHalfKernels, setNativeThreads } from '../src/index.js';

const kernels = nativeHalfKernels();

/** Runs fn with core's TS loops (the native hook removed), then restores the hook. */
function withTs<T>(fn: () => T): T {
  const saved = halfKernels();
  setHalfKernels(null);
  try {
    return fn();
  } finally {
    setHalfKernels(saved);
  }
}

function sameBits(a: ArrayBufferView & { length: number }, b: ArrayBufferView & { length: number }, what: string) {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  expect(x.length, what).toBe(y.length);
  let i = 0;
  while (i < x.length && x[i] === y[i]) i++;
  expect(i, `${what}: first differing byte ${i}`).toBe(x.length);
}

/** Random fp32 bit patterns plus specials; every 16-bit pattern's fp32 value and its neighbours. */
function inputs(n: number): Float32Array {
  const bits = new Uint32Array(n + 65536 * 3 + 16);
  let seed = 12345;
  for (let i = 0; i < n; i++) {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    bits[i] = seed;
  }
  const specials = [
    0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffbfffff, 0x7fa00000, 0x00000001, 0x807fffff,
    0x477ff000, 0x477fefff, 0x38800000, 0x33000000, 0x33000001, 0x7f7fffff,
  ];
  bits.set(specials, n);
  const h = new Uint16Array(65536).map((_, k) => k);
  for (const format of ['fp16', 'bf16'] as const) {
    const w = new Uint32Array(withTs(() => widen(h, format)).buffer);
    // each 16-bit value and the fp32 values just around it (rounding boundaries and ties)
    for (let k = 0; k < 65536; k++) {
      const at = n + 16 + (format === 'fp16' ? 0 : 65536) + k;
      bits[at] = w[k];
    }
  }
  for (let k = 0; k < 65536; k++) bits[n + 16 + 131072 + k] = ((k << 16) | 0x8000) >>> 0; // bf16 ties
  return new Float32Array(bits.buffer);
}

describe.skipIf(!kernels)('native fp16/bf16 conversions', () => {
  afterAll(() => setNativeThreads(0));

  it('are installed in core on import', () => {
    expect(nativeBackendStatus()?.nativeHalf).toBe(true);
    expect(halfKernels()).not.toBeNull();
  });

  it.each(['fp16', 'bf16'] as const)('%s: every 16-bit pattern round-trips like the TS loops', (format) => {
    const all = new Uint16Array(65536).map((_, k) => k);
    const tsWide = withTs(() => widen(all, format));
    const nativeWide = widen(all, format);
    sameBits(nativeWide, tsWide, `${format} widen`);
    sameBits(
      narrow(nativeWide, format),
      withTs(() => narrow(tsWide, format)),
      `${format} narrow of widen`,
    );
  });

  it.each(['fp16', 'bf16'] as const)('%s: millions of random fp32 values and specials, 1 and 3 threads', (format) => {
    const x = inputs(3_000_000);
    const want = withTs(() => narrow(x, format));
    const wantRound = withTs(() => roundInPlace(new Float32Array(x), format));
    for (const threads of [1, 3]) {
      setNativeThreads(threads);
      sameBits(narrow(x, format), want, `${format} narrow, ${threads} threads`);
      sameBits(roundInPlace(new Float32Array(x), format), wantRound, `${format} roundInPlace, ${threads} threads`);
      // odd lengths and offsets exercise the scalar tails
      const part = x.subarray(3, 3 + 1001);
      sameBits(narrow(part, format), want.subarray(3, 1004), `${format} narrow of an offset view`);
    }
  });

  it('every ISA path gives the same bits (ZEROFLOW_POINTWISE_ISA=avx2 / generic in child processes)', () => {
    const script = `
      const k = require(${JSON.stringify(require.resolve('@zeroflow/native'))}).loadKernelsAddon();
      const n = 1 << 20, b = new Uint32Array(n + 65536);
      let s = 7; for (let i = 0; i < n; i++) { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; b[i] = s; }
      for (let i = 0; i < 65536; i++) b[n + i] = (i << 16) | (i & 0xffff);
      const f = new Float32Array(b.buffer), h = new Uint16Array(f.length), g = new Uint16Array(f.length);
      const all = new Uint16Array(65536).map((_, i) => i), w = new Float32Array(65536), v = new Float32Array(65536);
      k.narrow16(f, h, false); k.narrow16(f, g, true); k.widen16(all, w, false); k.widen16(all, v, true);
      const hash = (a) => { let x = 0; const u = new Uint8Array(a.buffer); for (let i = 0; i < u.length; i++) x = (Math.imul(x, 31) + u[i]) | 0; return x; };
      console.log(k.info().halfIsa, [h, g, w, v].map(hash).join(','));`;
    const out = (isa?: string) => {
      const r = spawnSync(process.execPath, ['-e', script], {
        encoding: 'utf8',
        env: { ...process.env, ZEROFLOW_POINTWISE_ISA: isa ?? '' },
      });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.trim().split(' ');
    };
    const [, best] = out();
    for (const isa of ['avx2', 'generic']) {
      const [got, hashes] = out(isa);
      expect(got).toContain(isa === 'avx2' ? 'avx2' : 'generic');
      expect(hashes, isa).toBe(best);
    }
  });
});
