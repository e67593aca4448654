// zeroflow_kernels' math kernels against plain JS references: unary ops (as tfjs computes them, in double
// with Math.*), reductions over [outer, r, inner] (double sums; NaN-propagating max/min), fp16/bf16
// conversions against a JS port of core's numeric/half.ts over every 16-bit pattern; results independent of
// the thread count and identical on the avx512 / avx2 / generic paths.
// Run: node --test native/test/
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const { loadKernelsAddon, kernelsAddonUnavailableReason } = require('../index.cjs');
const addon = loadKernelsAddon();
const skip = addon ? false : `kernels addon unavailable: ${kernelsAddonUnavailableReason()}`;

let seed = 4242;
function randomArray(n, scale = 1) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    out[i] = ((seed / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}
function close(got, want, tol, what) {
  for (let i = 0; i < want.length; i++) {
    if (Object.is(got[i], want[i])) continue;
    const err = Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i]));
    assert.ok(err <= tol, `${what}[${i}]: ${got[i]} vs ${want[i]}`);
  }
}

const UNARY = [
  (x) => x * -1,
  (x) => x * x,
  (x) => Math.sqrt(x),
  (x) => 1 / Math.sqrt(x),
  (x) => Math.tanh(x),
  null, // pow: below
  (x) => Math.abs(x),
  (x) => 1 / x,
  (x) => Math.log(x),
  (x) => 1 / (1 + Math.exp(-x)),
  (x) => Math.max(0, x), // tfjs's Relu
];

test('unary ops match Math.* rounded to float32 (odd and threaded sizes, specials)', { skip }, () => {
  for (const n of [1, 17, 100_003]) {
    const x = randomArray(n, 8);
    x[0] = n > 1 ? Number.NaN : x[0];
    UNARY.forEach((f, op) => {
      if (!f) return;
      const out = new Float32Array(n);
      addon.unary(op, 0, x, out);
      close(out, Float32Array.from(x, f), 1e-6, `op ${op}`);
    });
    for (const p of [3, 2, 1, 0, -1, 0.5, 1.7]) {
      const out = new Float32Array(n);
      addon.unary(5, p, x, out);
      close(
        out,
        Float32Array.from(x, (v) => v ** p),
        1e-6,
        `pow ${p}`,
      );
    }
  }
});

function reduceRef(op, x, outer, r, inner) {
  const out = new Float32Array(outer * inner);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let acc = op === 1 ? -Infinity : op === 2 ? Infinity : 0;
      for (let k = 0; k < r; k++) {
        const v = x[(o * r + k) * inner + i];
        if (op === 0) acc += v;
        else if (op === 3) acc += Math.fround(v / r);
        else if (Number.isNaN(v) || (op === 1 ? v > acc : v < acc) || Number.isNaN(acc))
          acc = Number.isNaN(acc) ? acc : v;
      }
      out[o * inner + i] = acc;
    }
  return out;
}

test('reductions over [outer, r, inner] match double-precision references, NaN included', { skip }, () => {
  for (const [outer, r, inner] of [
    [1, 1, 1],
    [3, 17, 1],
    [1, 1024, 256],
    [5, 7, 3],
    [2, 300, 700],
    [64, 1000, 1],
  ]) {
    const x = randomArray(outer * r * inner, 3);
    if (x.length > 10) x[7] = Number.NaN;
    for (const op of [0, 1, 2, 3]) {
      const out = new Float32Array(outer * inner);
      addon.reduce(op, x, out, outer, r, inner);
      close(out, reduceRef(op, x, outer, r, inner), 1e-6, `reduce ${op} [${outer},${r},${inner}]`);
    }
  }
});

test('reductions and unary ops do not depend on the thread count', { skip }, () => {
  const x = randomArray(3 * 4099 * 33, 2);
  const run = () => {
    const outs = [0, 1, 3].map((op) => {
      const out = new Float32Array(3 * 33);
      addon.reduce(op, x, out, 3, 4099, 33);
      return out;
    });
    const rows = new Float32Array(3 * 4099);
    addon.reduce(0, x, rows, 3 * 4099, 33, 1);
    const t = new Float32Array(x.length);
    addon.unary(4, 0, x, t);
    return [...outs, rows, t];
  };
  try {
    addon.setNumThreads(1);
    const one = run();
    addon.setNumThreads(3);
    assert.deepEqual(run(), one);
  } finally {
    addon.setNumThreads(0);
  }
});

// A JS port of core's numeric/half.ts fp16 narrowing (the reference of the native conversion).
function fp16FromBits(bits) {
  const sign = (bits >>> 16) & 0x8000;
  const abs = bits & 0x7fffffff;
  if (abs >= 0x7f800000) return abs === 0x7f800000 ? sign | 0x7c00 : sign | 0x7e00 | ((abs >>> 13) & 0x3ff);
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs >= 0x38800000) {
    let h = (abs - 0x38000000) >>> 13;
    const rest = abs & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++;
    return sign | h;
  }
  const exp = abs >>> 23;
  if (exp < 102) return sign;
  const mant = (abs & 0x7fffff) | 0x800000;
  const shift = 126 - exp;
  let h = mant >>> shift;
  const rest = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rest > half || (rest === half && (h & 1) === 1)) h++;
  return sign | h;
}
const bf16FromBits = (b) =>
  (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x40 : ((b >>> 0) + 0x7fff + ((b >>> 16) & 1)) >>> 16;

test('fp16/bf16 narrowing matches the JS reference on every widened pattern and random bits', { skip }, () => {
  const n = 1 << 20;
  const bits = new Uint32Array(n + 65536);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1664525 + 1013904223) >>> 0;
    bits[i] = seed;
  }
  for (let i = 0; i < 65536; i++) bits[n + i] = (i << 16) | 0x8000; // bf16 ties, fp16 large values
  const f = new Float32Array(bits.buffer);
  for (const bf16 of [false, true]) {
    const got = new Uint16Array(f.length);
    addon.narrow16(f, got, bf16);
    const ref = bf16 ? bf16FromBits : fp16FromBits;
    for (let i = 0; i < bits.length; i++) assert.equal(got[i], ref(bits[i]), `bits ${bits[i].toString(16)}`);
    // 16 -> 32 -> 16 is the identity on every non-NaN pattern, and NaN stays NaN
    const all = new Uint16Array(65536).map((_, k) => k);
    const wide = new Float32Array(65536);
    addon.widen16(all, wide, bf16);
    const back = new Uint16Array(65536);
    addon.narrow16(wide, back, bf16);
    for (let k = 0; k < 65536; k++) {
      if (Number.isNaN(wide[k])) assert.equal(back[k], bf16 ? k | 0x40 : k | 0x200, `NaN ${k.toString(16)}`);
      else assert.equal(back[k], k, `pattern ${k.toString(16)}`);
    }
  }
});

test('every ISA path gives the same bits', { skip }, () => {
  const script = `
    const k = require(${JSON.stringify(require.resolve('../index.cjs'))}).loadKernelsAddon();
    let s = 3; const x = new Float32Array(70001).map(() => { s = (s * 1103515245 + 12345) >>> 0; return (s / 2 ** 32) * 8 - 4; });
    const outs = [];
    for (const op of [0, 1, 2, 3, 4, 6, 7, 8, 9, 10]) { const o = new Float32Array(x.length); k.unary(op, 0, x, o); outs.push(o); }
    for (const op of [0, 1, 2, 3]) { const o = new Float32Array(7); k.reduce(op, x, o, 7, 10000, 1); outs.push(o); const p = new Float32Array(1000); k.reduce(op, x, p, 1, 70, 1000); outs.push(p); }
    const h = new Uint16Array(x.length); k.narrow16(x, h, false); outs.push(h);
    let hash = 0; for (const o of outs) { const u = new Uint8Array(o.buffer); for (let i = 0; i < u.length; i++) hash = (Math.imul(hash, 31) + u[i]) | 0; }
    console.log(hash);`;
  const run = (isa) =>
    spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      env: { ...process.env, ZEROFLOW_POINTWISE_ISA: isa },
    }).stdout;
  const best = run('');
  assert.ok(best.trim().length > 0);
  assert.equal(run('avx2'), best);
  assert.equal(run('generic'), best);
});
