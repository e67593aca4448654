// zeroflow_kernels' SGEMM against a float64 JS reference: odd sizes, every transpose, batches, broadcast
// and index-mapped batches, accumulate, SharedArrayBuffer views, both engines (OpenBLAS where linked, and
// our own kernel), bit-identical results for 1, 2 and 3 threads, and the disabled loader.
// Run: node --test native/test/
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const { loadKernelsAddon, kernelsAddonUnavailableReason } = require('../index.cjs');
const addon = loadKernelsAddon();
const skip = addon ? false : `kernels addon unavailable: ${kernelsAddonUnavailableReason()}`;

let seed = 12345;
function rand() {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed / 2 ** 32 - 0.5;
}
function randomArray(n, shared = false) {
  const out = shared ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rand();
  return out;
}

function reference(a, b, batch, m, n, k, ta, tb, aIndex, bIndex) {
  const c = new Float64Array(batch * m * n);
  for (let x = 0; x < batch; x++) {
    const ai = aIndex ? aIndex[x] : a.length === m * k ? 0 : x;
    const bi = bIndex ? bIndex[x] : b.length === k * n ? 0 : x;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) {
          s += a[ai * m * k + (ta ? p * m + i : i * k + p)] * b[bi * k * n + (tb ? j * k + p : p * n + j)];
        }
        c[x * m * n + i * n + j] = s;
      }
  }
  return c;
}

function relErr(got, want) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

const SHAPES = [
  [1, 1, 1, 1],
  [1, 7, 33, 130],
  [3, 33, 7, 1],
  [2, 130, 129, 300],
  [5, 17, 65, 9],
  [1, 300, 1, 257],
  [1, 1, 300, 513],
  [4, 64, 64, 16],
];

for (const engine of ['sgemmBatched', 'sgemmBatchedOwn']) {
  test(`${engine} matches the float64 reference on odd sizes and every transpose`, { skip }, () => {
    for (const [batch, m, n, k] of SHAPES) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          const a = randomArray(batch * m * k);
          const b = randomArray(batch * k * n, true); // a SharedArrayBuffer view
          const c = new Float32Array(batch * m * n);
          addon[engine](a, b, c, batch, m, n, k, ta, tb);
          const err = relErr(c, reference(a, b, batch, m, n, k, ta, tb));
          assert.ok(err < 1e-6, `${engine} ${[batch, m, n, k]} ta=${ta} tb=${tb}: ${err}`);
        }
      }
    }
  });
}

test('broadcast of one matrix, index-mapped batches and accumulate', { skip }, () => {
  const [batch, m, n, k] = [6, 9, 35, 20];
  const a = randomArray(m * k); // one A for every batch
  const b = randomArray(3 * k * n);
  const bIndex = Int32Array.from([0, 1, 2, 2, 1, 0]);
  const c = new Float32Array(batch * m * n);
  addon.sgemmBatched(a, b, c, batch, m, n, k, false, true, false, null, bIndex);
  const want = reference(a, b, batch, m, n, k, false, true, null, bIndex);
  assert.ok(relErr(c, want) < 1e-6);
  const c0 = randomArray(batch * m * n);
  const acc = Float32Array.from(c0);
  addon.sgemmBatchedOwn(a, b, acc, batch, m, n, k, false, true, true, null, bIndex);
  assert.ok(
    relErr(
      acc,
      want.map((v, i) => v + c0[i]),
    ) < 1e-6,
  );
  assert.throws(
    () => addon.sgemmBatched(a, b, c, batch, m, n, k, false, true, false, null, Int32Array.of(0, 1, 2, 3, 0, 0)),
    /out of range/,
  );
  assert.throws(() => addon.sgemmBatched(a, randomArray(2 * k * n), c, batch, m, n, k, false, false), /holds neither/);
});

test('results are bit-identical for 1, 2 and 3 threads', { skip }, () => {
  const results = [];
  for (const threads of [1, 2, 3]) {
    assert.equal(addon.setNumThreads(threads), threads);
    seed = 99;
    const out = [];
    for (const [batch, m, n, k] of [
      [1, 257, 301, 333],
      [2, 130, 129, 300],
      [32, 64, 64, 16],
    ]) {
      const a = randomArray(batch * m * k);
      const b = randomArray(batch * k * n);
      for (const engine of ['sgemmBatched', 'sgemmBatchedOwn']) {
        const c = new Float32Array(batch * m * n);
        addon[engine](a, b, c, batch, m, n, k, false, false);
        out.push(c);
      }
    }
    results.push(out);
  }
  addon.setNumThreads(0);
  for (const other of results.slice(1)) {
    other.forEach((c, i) => assert.deepEqual(c, results[0][i]));
  }
});

test('ZEROFLOW_NUM_THREADS sizes the pool', { skip }, () => {
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `console.log(require(${JSON.stringify(require.resolve('../index.cjs'))}).loadKernelsAddon().info().threads)`,
    ],
    {
      env: { ...process.env, FORCE_COLOR: '0', ZEROFLOW_NUM_THREADS: '3' },
      encoding: 'utf8',
    },
  );
  assert.equal(r.stdout.trim(), '3');
});

test('ZEROFLOW_NO_NATIVE=1 disables the kernels addon with a reason', () => {
  const r = spawnSync(
    process.execPath,
    [
      '-e',
      `const n = require(${JSON.stringify(require.resolve('../index.cjs'))}); console.log(n.loadKernelsAddon() === null, n.kernelsAddonUnavailableReason())`,
    ],
    { env: { ...process.env, FORCE_COLOR: '0', ZEROFLOW_NO_NATIVE: '1' }, encoding: 'utf8' },
  );
  assert.match(r.stdout, /^true native code is disabled by ZEROFLOW_NO_NATIVE=1/);
});

test('the avx2 and generic micro-kernels are correct too (ZEROFLOW_GEMM_ISA)', { skip }, () => {
  const script = `
    const k = require(${JSON.stringify(require.resolve('../index.cjs'))}).loadKernelsAddon();
    const [batch, m, n, kk] = [2, 37, 45, 70];
    const a = Float32Array.from({ length: batch * m * kk }, (_, i) => Math.sin(i));
    const b = Float32Array.from({ length: batch * kk * n }, (_, i) => Math.cos(i));
    let worst = 0;
    for (const ta of [false, true]) for (const tb of [false, true]) {
      const c = new Float32Array(batch * m * n);
      k.sgemmBatchedOwn(a, b, c, batch, m, n, kk, ta, tb);
      for (let x = 0; x < batch; x++) for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < kk; p++) s += a[x*m*kk + (ta ? p*m+i : i*kk+p)] * b[x*kk*n + (tb ? j*kk+p : p*n+j)];
        worst = Math.max(worst, Math.abs(c[x*m*n + i*n + j] - s) / (1 + Math.abs(s)));
      }
    }
    console.log(k.info().isa, worst);`;
  for (const isa of ['avx2', 'generic']) {
    const r = spawnSync(process.execPath, ['-e', script], {
      env: { ...process.env, FORCE_COLOR: '0', ZEROFLOW_GEMM_ISA: isa },
      encoding: 'utf8',
    });
    const [got, worst] = r.stdout.trim().split(' ');
    if (isa === 'avx2' && got === 'generic') continue; // a CPU without AVX2
    assert.equal(got, isa, r.stderr);
    assert.ok(Number(worst) < 1e-5, `${isa}: ${worst}`);
  }
});
