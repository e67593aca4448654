// The native reduction kernels against a JS reference: fp16/bf16 round-to-nearest-even (ties, subnormals,
// overflow to inf, NaN), NaN-propagating max/min, int32 wrap-around and truncating avg, odd lengths
// (vector tails), and the loader's disabled path. Run: node --test native/test/
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const { loadShmAddon, shmAddonUnavailableReason } = require('../index.cjs');
const addon = loadShmAddon();
const F32 = 0,
  F16 = 1,
  BF16 = 2,
  I32 = 3;
const SUM = 0,
  AVG = 1,
  MAX = 2,
  MIN = 3;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
function f16ToF32(h) {
  const s = h & 0x8000 ? -1 : 1,
    e = (h >> 10) & 0x1f,
    m = h & 0x3ff;
  if (e === 0x1f) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
}
function bf16ToF32(h) {
  u32[0] = h << 16;
  return f32[0];
}

test('the addon loads and reports its ISA', { skip: !addon && shmAddonUnavailableReason() }, () => {
  assert.match(addon.isa(), /^(avx512|avx2|generic)$/);
});

test('fp16: every half value widens exactly; sums of two halves round to nearest even', { skip: !addon }, () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const zero = new Uint16Array(65536); // +0: x + 0 = x exactly (and -0 + +0 = +0)
  const out = new Uint16Array(65536);
  addon.reduce(F16, MAX, out, [all, all], 1);
  for (let i = 0; i < 65536; i++) {
    if (Number.isNaN(f16ToF32(i))) assert.ok(Number.isNaN(f16ToF32(out[i])));
    else assert.equal(out[i], i, `max(x, x) of half 0x${i.toString(16)}`);
  }
  addon.reduce(F16, SUM, out, [all, zero], 1);
  // Ties: 1 + 2^-11 is halfway between 1 and 1+2^-10 -> even (1); 1+2^-10 + 2^-11 -> 1+2^-9 (even).
  const a = new Uint16Array([0x3c00, 0x3c01, 0x7bff, 0x0001, 0x8001]);
  const b = new Uint16Array([0x1000, 0x1000, 0x7bff, 0x0001, 0x0001]);
  const r = new Uint16Array(5);
  addon.reduce(F16, SUM, r, [a, b], 1);
  assert.deepEqual([...r], [0x3c00, 0x3c02, 0x7c00, 0x0002, 0x0000]);
});

test('bf16: rounding to nearest even, NaN stays NaN', { skip: !addon }, () => {
  const a = new Uint16Array([0x3f80, 0x3f81, 0x7fc0, 0x7f7f]);
  const b = new Uint16Array([0x3b80, 0x3b80, 0x3f80, 0x7f7f]); // 2^-8: half an ulp of 1.0 in bf16
  const r = new Uint16Array(4);
  addon.reduce(BF16, SUM, r, [a, b], 1);
  assert.equal(r[0], 0x3f80);
  assert.equal(r[1], 0x3f82);
  assert.ok(Number.isNaN(bf16ToF32(r[2])));
  assert.equal(r[3], 0x7f80); // overflow to +inf
});

test('float32 max/min propagate NaN; avg divides; odd lengths hit the vector tails', { skip: !addon }, () => {
  for (const n of [1, 15, 17, 2049, 4099]) {
    const a = Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i) * 10));
    const b = Float32Array.from({ length: n }, (_, i) => (i === n - 1 ? Number.NaN : Math.fround(Math.cos(i) * 10)));
    const c = Float32Array.from({ length: n }, (_, i) => Math.fround(i / 7));
    const out = new Float32Array(n);
    for (const [op, fn] of [
      [MAX, (x, y) => (x > y || Number.isNaN(x) ? x : y)],
      [MIN, (x, y) => (x < y || Number.isNaN(x) ? x : y)],
      [SUM, (x, y) => Math.fround(x + y)],
    ]) {
      addon.reduce(F32, op, out, [a, b, c], 3);
      for (let i = 0; i < n; i++) {
        const want = fn(fn(a[i], b[i]), c[i]);
        if (Number.isNaN(want)) assert.ok(Number.isNaN(out[i]), `op ${op} i ${i}`);
        else assert.equal(out[i], want, `op ${op} n ${n} i ${i}`);
      }
    }
    addon.reduce(F32, AVG, out, [a, c], 2);
    for (let i = 0; i < n; i++) assert.equal(out[i], Math.fround(Math.fround(a[i] + c[i]) / 2));
  }
});

test('int32: sum wraps around, avg truncates toward zero', { skip: !addon }, () => {
  const a = new Int32Array([2147483647, -7, 5, -2147483648]);
  const b = new Int32Array([1, 0, 0, -1]);
  const out = new Int32Array(4);
  addon.reduce(I32, SUM, out, [a, b], 1);
  assert.deepEqual([...out], [-2147483648, -7, 5, 2147483647]);
  addon.reduce(I32, AVG, out, [a, b], 2);
  assert.deepEqual([...out], [-1073741824, -3, 2, 1073741823]);
  addon.reduce(I32, MIN, out, [a, b], 1);
  assert.deepEqual([...out], [1, -7, 0, -2147483648]);
});

test('ZEROFLOW_NO_NATIVE=1 makes the loader return null with the reason', () => {
  const code =
    "const n=require('./index.cjs');console.log(JSON.stringify([n.loadShmAddon(),n.shmAddonUnavailableReason()]))";
  const r = spawnSync(process.execPath, ['-e', code], {
    cwd: new URL('..', import.meta.url),
    env: { ...process.env, ZEROFLOW_NO_NATIVE: '1' },
    encoding: 'utf8',
  });
  assert.deepEqual(JSON.parse(r.stdout), [null, 'native code is disabled by ZEROFLOW_NO_NATIVE=1']);
});

test('avx512, avx2 and generic kernels give identical bits', { skip: !addon }, () => {
  // Each ISA in its own process (the choice is made once at load); digests of every dtype x op must match.
  const script = `
    const a = require('./index.cjs').loadShmAddon();
    const crypto = require('node:crypto');
    const h = crypto.createHash('sha256');
    let s = 12345;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
    const n = 5003;
    for (const [dtype, Ctor] of [[0, Float32Array], [1, Uint16Array], [2, Uint16Array], [3, Int32Array]]) {
      const srcs = [0, 1, 2].map(() => Ctor.from({ length: n }, () =>
        dtype === 0 ? (rnd() - 0.5) * 1e3 : dtype === 3 ? (rnd() * 2 ** 32) | 0 : (rnd() * 65536) | 0));
      for (const op of [0, 1, 2, 3]) {
        const out = new Ctor(n);
        a.reduce(dtype, op, out, srcs, 3);
        h.update(new Uint8Array(out.buffer));
      }
    }
    console.log(a.isa() + ' ' + h.digest('hex'));`;
  const digests = ['avx512', 'avx2', 'generic'].map((isa) => {
    const r = spawnSync(process.execPath, ['-e', script], {
      cwd: new URL('..', import.meta.url),
      env: { ...process.env, ZEROFLOW_REDUCE_ISA: isa },
      encoding: 'utf8',
    });
    return r.stdout.trim().split(' ');
  });
  assert.equal(digests.at(-1)[0], 'generic');
  for (const [isa, digest] of digests) assert.equal(digest, digests[0][1], `${isa} differs from ${digests[0][0]}`);
});
