// zeroflow_kernels' pointwise kernels against plain JS references: binary ops with every broadcast layout
// (bit-exact: one IEEE op per element), exp (within 2 ulp, special values exact), softmax, transpose (exact),
// Adam/AdamW/SGD steps (bit-identical to core's TS loops, copied here), results independent of the thread
// count and identical on the avx512 / avx2 / generic paths.
// Run: node --test native/test/
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const { loadKernelsAddon, kernelsAddonUnavailableReason } = require('../index.cjs');
const addon = loadKernelsAddon();
const skip = addon ? false : `kernels addon unavailable: ${kernelsAddonUnavailableReason()}`;

let seed = 987654;
function rand() {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 2 ** 32;
}
function randomArray(n, lo = -1, hi = 1) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rand();
  return out;
}
function ulpDiff(a, b) {
  if (Number.isNaN(a) && Number.isNaN(b)) return 0;
  if (a === b) return 0;
  const i32 = new Int32Array(new Float32Array([a, b]).buffer);
  const ka = i32[0] < 0 ? -2147483648 - i32[0] : i32[0];
  const kb = i32[1] < 0 ? -2147483648 - i32[1] : i32[1];
  return Math.abs(ka - kb);
}

const OPS = [(x, y) => x + y, (x, y) => x - y, (x, y) => x * y, (x, y) => x / y];

test('binary ops: same shape, scalar, trailing, column and middle broadcasts, swapped, bit-exact', { skip }, () => {
  // [n, bMid, bInner]: same shape, scalar, [B,T,C] op [C], [B,T,C] op [B,T,1], [O,M,I] op [M,1].
  const layouts = [
    [1, 1, 1],
    [100003, 100003, 1],
    [7, 1, 1],
    [70001, 1, 1],
    [3 * 5 * 33, 33, 1],
    [40 * 64 * 129, 129, 1],
    [3 * 5 * 33, 15, 33],
    [40 * 64 * 129, 40 * 64, 129],
    [4 * 9 * 17, 9, 17],
  ];
  for (const [n, bMid, bInner] of layouts) {
    const a = randomArray(n);
    const b = randomArray(bMid, 0.5, 2);
    for (let op = 0; op < 4; op++) {
      for (const swap of [false, true]) {
        const out = new Float32Array(n);
        addon.binary(op, a, b, out, bMid, bInner, swap);
        for (let i = 0; i < n; i++) {
          const bv = b[Math.floor(i / bInner) % bMid];
          const want = Math.fround(swap ? OPS[op](bv, a[i]) : OPS[op](a[i], bv));
          if (!Object.is(out[i], want))
            assert.fail(`op ${op} swap ${swap} [${n},${bMid},${bInner}] at ${i}: ${out[i]} vs ${want}`);
        }
      }
    }
  }
  assert.throws(
    () => addon.binary(4, new Float32Array(1), new Float32Array(1), new Float32Array(1), 1, 1, false),
    RangeError,
  );
  assert.throws(
    () => addon.binary(0, new Float32Array(2), new Float32Array(1), new Float32Array(2), 2, 1, false),
    RangeError,
  );
});

test('exp within 2 ulp of Math.exp over the float range; inf, -inf, NaN, subnormal results', { skip }, () => {
  const x = new Float32Array([
    ...randomArray(200001, -30, 30),
    ...randomArray(20001, -104, 89),
    0,
    -0,
    88.72,
    88.73,
    -87.3,
    -100,
    -103.9,
    -104.5,
    -200,
    200,
    Infinity,
    -Infinity,
    Number.NaN,
  ]);
  const out = new Float32Array(x.length);
  addon.exp(x, out);
  let worst = 0;
  for (let i = 0; i < x.length; i++) {
    const want = Math.fround(Math.exp(x[i]));
    const d =
      want !== 0 && Math.abs(want) < 1.1754943508222875e-38
        ? Math.abs(out[i] - want) <= 2 * 2 ** -149
          ? 0
          : 99
        : ulpDiff(out[i], want);
    worst = Math.max(worst, d);
    if (d > 2) assert.fail(`exp(${x[i]}) = ${out[i]}, want ${want}`);
  }
  assert.ok(worst <= 2);
});

test('softmax rows match a float64 reference to 1e-6 relative, NaN rows stay NaN', { skip }, () => {
  for (const [rows, cols] of [
    [1, 1],
    [3, 7],
    [513, 64],
    [37, 1024],
    [2, 100003],
  ]) {
    const x = randomArray(rows * cols, -20, 20);
    if (rows === 3) x[5] = Number.NaN;
    const out = new Float32Array(rows * cols);
    addon.softmax(x, out, cols);
    for (let r = 0; r < rows; r++) {
      let mx = -Infinity;
      for (let c = 0; c < cols; c++) mx = Math.max(mx, x[r * cols + c]);
      let sum = 0;
      for (let c = 0; c < cols; c++) sum += Math.exp(x[r * cols + c] - mx);
      for (let c = 0; c < cols; c++) {
        const want = Math.exp(x[r * cols + c] - mx) / sum;
        const got = out[r * cols + c];
        if (Number.isNaN(want)) assert.ok(Number.isNaN(got));
        else if (Math.abs(got - want) > 1e-6 * Math.max(want, 1e-6))
          assert.fail(`softmax [${rows},${cols}] ${r},${c}: ${got} vs ${want}`);
      }
    }
  }
});

function transposeReference(x, shape, perm) {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array(rank).fill(1);
  for (let d = rank - 2; d >= 0; d--) inStrides[d] = inStrides[d + 1] * shape[d + 1];
  const out = new x.constructor(x.length);
  const coord = new Array(rank).fill(0);
  for (let o = 0; o < x.length; o++) {
    let at = 0;
    for (let d = 0; d < rank; d++) at += coord[d] * inStrides[perm[d]];
    out[o] = x[at];
    for (let d = rank - 1; d >= 0; d--) {
      if (++coord[d] < outShape[d]) break;
      coord[d] = 0;
    }
  }
  return out;
}

test('transpose: 2-D, attention 4-D perms, size-1 axes, int32, exact', { skip }, () => {
  const cases = [
    [[1], [0]],
    [
      [5, 7],
      [1, 0],
    ],
    [
      [300, 517],
      [1, 0],
    ],
    [
      [8, 64, 4, 16],
      [0, 2, 1, 3],
    ],
    [
      [3, 11, 5, 7],
      [0, 2, 1, 3],
    ],
    [
      [3, 5, 11, 7],
      [0, 1, 3, 2],
    ],
    [
      [2, 3, 4, 5],
      [3, 1, 0, 2],
    ],
    [
      [1, 9, 1, 6],
      [2, 3, 0, 1],
    ],
    [
      [4, 1, 6],
      [0, 2, 1],
    ],
    [
      [6, 70, 90],
      [2, 0, 1],
    ],
  ];
  for (const [shape, perm] of cases) {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = randomArray(n);
    const out = new Float32Array(n);
    addon.transpose(x, out, shape, perm);
    assert.deepEqual(out, transposeReference(x, shape, perm), `${shape} ${perm}`);
  }
  const ints = Int32Array.from({ length: 24 }, (_, i) => i - 5);
  const outInts = new Int32Array(24);
  addon.transpose(ints, outInts, [2, 3, 4], [2, 0, 1]);
  assert.deepEqual(outInts, transposeReference(ints, [2, 3, 4], [2, 0, 1]));
  assert.throws(() => addon.transpose(ints, outInts, [2, 3, 4], [0, 0, 1]), RangeError);
});

// core's packages/core/src/optim/adam.ts and sgd.ts loops, verbatim in arithmetic.
function adamReference(p, g, m, v, lr, beta1, beta2, eps, wd, step, adamW, biasCorrection) {
  const bc1 = biasCorrection ? 1 - beta1 ** step : 1;
  const bc2 = biasCorrection ? 1 - beta2 ** step : 1;
  const stepSize = lr / bc1;
  const bc2Sqrt = Math.sqrt(bc2);
  const l2 = adamW ? 0 : wd;
  const keep = adamW ? 1 - lr * wd : 1;
  for (let i = 0; i < p.length; i++) {
    const pi = p[i];
    const gi = g[i] + l2 * pi;
    const mi = Math.fround(beta1 * m[i] + (1 - beta1) * gi);
    const vi = Math.fround(beta2 * v[i] + (1 - beta2) * gi * gi);
    m[i] = mi;
    v[i] = vi;
    p[i] = pi * keep - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
  }
}
function sgdReference(p, g, buf, lr, momentum, dampening, wd, nesterov, fresh) {
  for (let i = 0; i < p.length; i++) {
    if (momentum === 0) {
      p[i] -= lr * (g[i] + wd * p[i]);
      continue;
    }
    const d = g[i] + wd * p[i];
    buf[i] = fresh ? d : momentum * buf[i] + (1 - dampening) * d;
    p[i] -= lr * (nesterov ? d + momentum * buf[i] : buf[i]);
  }
}

test('adamStep and sgdStep are bit-identical to core TS loops over several steps', { skip }, () => {
  const n = 200003;
  for (const [adamW, wd, biasCorrection] of [
    [true, 0.01, true],
    [false, 0.1, true],
    [true, 0, false],
  ]) {
    const p = randomArray(n);
    const [pRef, m, v, mRef, vRef] = [
      Float32Array.from(p),
      new Float32Array(n),
      new Float32Array(n),
      new Float32Array(n),
      new Float32Array(n),
    ];
    for (let step = 1; step <= 5; step++) {
      const g = randomArray(n, -0.1, 0.1);
      const bc1 = biasCorrection ? 1 - 0.9 ** step : 1;
      const bc2 = biasCorrection ? 1 - 0.999 ** step : 1;
      addon.adamStep(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, wd, bc1, bc2, adamW);
      adamReference(pRef, g, mRef, vRef, 1e-3, 0.9, 0.999, 1e-8, wd, step, adamW, biasCorrection);
    }
    assert.deepEqual(p, pRef, `adam adamW=${adamW}`);
    assert.deepEqual(m, mRef);
    assert.deepEqual(v, vRef);
  }
  for (const [momentum, dampening, wd, nesterov] of [
    [0, 0, 0.01, false],
    [0.9, 0, 0.001, false],
    [0.9, 0.1, 0, false],
    [0.8, 0, 0.01, true],
  ]) {
    const p = randomArray(n);
    const pRef = Float32Array.from(p);
    const buf = new Float32Array(n);
    const bufRef = new Float32Array(n);
    for (let step = 1; step <= 4; step++) {
      const g = randomArray(n, -0.1, 0.1);
      addon.sgdStep(p, g, momentum ? buf : null, 0.05, momentum, dampening, wd, nesterov, step === 1);
      sgdReference(pRef, g, bufRef, 0.05, momentum, dampening, wd, nesterov, step === 1);
    }
    assert.deepEqual(p, pRef, `sgd momentum=${momentum} nesterov=${nesterov}`);
    assert.deepEqual(buf, bufRef);
  }
});

// A digest of every kernel's output on fixed inputs, for comparing thread counts and ISA paths.
function digest() {
  seed = 4242;
  const h = createHash('sha256');
  const n = 300007;
  const a = randomArray(n, -50, 50);
  const b = randomArray(n);
  const out = new Float32Array(n);
  for (let op = 0; op < 4; op++) {
    addon.binary(op, a, b, out, n, 1, false);
    h.update(out);
    addon.binary(op, a, b, out, 1001, 299, true);
    h.update(out);
  }
  addon.exp(a, out);
  h.update(out);
  addon.softmax(a, out.subarray(0, 300000), 1000);
  h.update(out);
  addon.transpose(a, out, [7, 42858], [1, 0]);
  h.update(out);
  const m = new Float32Array(n);
  const v = new Float32Array(n);
  const p = Float32Array.from(b);
  for (let s = 1; s <= 3; s++)
    addon.adamStep(p, a, m, v, 1e-3, 0.9, 0.999, 1e-8, 0.01, 1 - 0.9 ** s, 1 - 0.999 ** s, true);
  h.update(p);
  return h.digest('hex');
}

test('results do not depend on the thread count or the SIMD path', { skip }, () => {
  const digests = [1, 2, 3].map((t) => {
    addon.setNumThreads(t);
    return digest();
  });
  addon.setNumThreads(0);
  assert.equal(new Set(digests).size, 1, 'thread counts differ');
  for (const isa of ['avx2', 'generic']) {
    const r = spawnSync(process.execPath, [new URL(import.meta.url).pathname], {
      env: { ...process.env, ZEROFLOW_POINTWISE_ISA: isa, ZF_POINTWISE_CHILD: '1' },
      encoding: 'utf8',
    });
    const line = /DIGEST ([0-9a-f]+) (\w+)/.exec(r.stdout);
    assert.ok(line, r.stdout + r.stderr);
    assert.equal(line[1], digests[0], `${line[2]} path differs from ${addon.info().pointwiseIsa}`);
  }
});

// Child mode of the test above: print the digest on the capped ISA and leave before any test runs.
if (addon && process.env.ZF_POINTWISE_CHILD) {
  console.log(`DIGEST ${digest()} ${addon.info().pointwiseIsa}`);
  process.exit(0);
}
