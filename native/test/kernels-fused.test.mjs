// zeroflow_kernels' fused kernels (GPT-2 tanh GELU, LayerNorm, softmax cross-entropy, each with its gradient)
// against float64 JS references on odd sizes; results independent of the thread count and identical on the
// avx512 / avx2 / generic paths. Run: node --test native/test/
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const { loadKernelsAddon, kernelsAddonUnavailableReason } = require('../index.cjs');
const addon = loadKernelsAddon();
const skip = addon ? false : `kernels addon unavailable: ${kernelsAddonUnavailableReason()}`;

let seed = 99;
function randomArray(n, scale = 1) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    out[i] = ((seed / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}
/** Worst |got - want| relative to max |want| (the scale of the output). */
function relErr(got, want) {
  let diff = 0;
  let scale = 1e-30;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(got[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / scale;
}
const K = Math.sqrt(2 / Math.PI);
const gelu = (v) => 0.5 * v * (1 + Math.tanh(K * (v + 0.044715 * v ** 3)));

test('GELU and its gradient match float64 references', { skip }, () => {
  for (const n of [1, 7, 16, 33, 70001]) {
    const x = randomArray(n, 6);
    const dy = randomArray(n);
    const y = new Float32Array(n);
    const dx = new Float32Array(n);
    addon.geluNew(x, y);
    addon.geluNewGrad(x, dy, dx);
    const h = 1e-4;
    const wantDx = Array.from(x, (v, i) => (dy[i] * (gelu(v + h) - gelu(v - h))) / (2 * h));
    assert.ok(relErr(y, Array.from(x, gelu)) < 1e-6, `gelu n=${n}`);
    assert.ok(relErr(dx, wantDx) < 1e-5, `gelu grad n=${n}`);
  }
});

test('LayerNorm and its gradient match float64 references', { skip }, () => {
  for (const [rows, cols] of [
    [1, 1],
    [3, 7],
    [5, 33],
    [600, 257],
  ]) {
    const x = randomArray(rows * cols, 3).map((v) => v + 10);
    const g = randomArray(cols);
    const b = randomArray(cols);
    const dy = randomArray(rows * cols);
    const [y, mean, rstd] = [new Float32Array(rows * cols), new Float32Array(rows), new Float32Array(rows)];
    addon.layerNorm(x, g, b, y, mean, rstd, cols, 1e-5);
    const [dx, dg, db] = [new Float32Array(rows * cols), new Float32Array(cols), new Float32Array(cols)];
    addon.layerNormGrad(x, dy, mean, rstd, g, dx, dg, db, cols);
    const wy = [];
    const wdx = [];
    const wdg = new Float64Array(cols);
    const wdb = new Float64Array(cols);
    for (let r = 0; r < rows; r++) {
      const row = Array.from(x.subarray(r * cols, (r + 1) * cols));
      const m = row.reduce((a, v) => a + v, 0) / cols;
      const s = 1 / Math.sqrt(row.reduce((a, v) => a + (v - m) ** 2, 0) / cols + 1e-5);
      const xhat = row.map((v) => (v - m) * s);
      const gr = xhat.map((_, j) => dy[r * cols + j] * g[j]);
      const a1 = gr.reduce((a, v) => a + v, 0) / cols;
      const a2 = gr.reduce((a, v, j) => a + v * xhat[j], 0) / cols;
      xhat.forEach((xh, j) => {
        wy.push(xh * g[j] + b[j]);
        wdx.push(s * (gr[j] - a1 - xh * a2));
        wdg[j] += dy[r * cols + j] * xh;
        wdb[j] += dy[r * cols + j];
      });
    }
    assert.ok(relErr(y, wy) < 1e-6, `y ${rows}x${cols}`);
    assert.ok(relErr(dx, wdx) < 1e-5, `dx ${rows}x${cols}`);
    assert.ok(relErr(dg, wdg) < 1e-6 && relErr(db, wdb) < 1e-6, `dgamma/dbeta ${rows}x${cols}`);
  }
});

test('softmax cross-entropy and its gradient match float64 references, ignored rows, bad targets', { skip }, () => {
  for (const [rows, cols, scale] of [
    [1, 1, 1],
    [4, 9, 1],
    [37, 1001, 60],
  ]) {
    const x = randomArray(rows * cols, scale);
    const t = Int32Array.from({ length: rows }, (_, i) => (i % 3 === 2 ? -100 : (i * 13) % cols));
    const lse = new Float32Array(rows);
    const loss = addon.softmaxCrossEntropy(x, t, lse, cols);
    const dx = new Float32Array(rows * cols);
    addon.softmaxCrossEntropyGrad(x, t, lse, 2, dx, cols);
    let total = 0;
    let count = 0;
    const wdx = new Float64Array(rows * cols);
    const wl = [];
    for (let r = 0; r < rows; r++) {
      const row = Array.from(x.subarray(r * cols, (r + 1) * cols));
      const m = Math.max(...row);
      const l = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
      wl.push(l);
      if (t[r] < 0) continue;
      total += l - row[t[r]];
      count++;
      row.forEach((v, j) => {
        wdx[r * cols + j] = Math.exp(v - l) - (j === t[r] ? 1 : 0);
      });
    }
    wdx.forEach((v, i) => {
      wdx[i] = (v * 2) / Math.max(count, 1);
    });
    assert.ok(relErr(lse, wl) < 1e-6, `lse ${rows}x${cols}`);
    assert.ok(Math.abs(loss - total / Math.max(count, 1)) < 1e-5 * Math.max(1, Math.abs(loss)), `loss ${rows}x${cols}`);
    assert.ok(relErr(dx, wdx) < 1e-5, `dx ${rows}x${cols}`);
  }
  assert.throws(
    () => addon.softmaxCrossEntropy(new Float32Array(4), Int32Array.of(0, 2), new Float32Array(2), 2),
    />= cols/,
  );
});

test('results do not depend on the thread count or the ISA path', { skip }, () => {
  const script = `
    const k = require(${JSON.stringify(require.resolve('../index.cjs'))}).loadKernelsAddon();
    k.setNumThreads(Number(process.env.T || 0));
    let s = 5; const rnd = (n, a) => new Float32Array(n).map(() => { s = (s * 1103515245 + 12345) >>> 0; return (s / 2 ** 32) * 2 * a - a; });
    const rows = 1030, cols = 257, n = rows * cols;
    const x = rnd(n, 4), dy = rnd(n, 1), g = rnd(cols, 1), b = rnd(cols, 1);
    const t = Int32Array.from({ length: rows }, (_, i) => (i % 7 === 3 ? -1 : (i * 5) % cols));
    const outs = [];
    const o = (len) => { const a = new Float32Array(len); outs.push(a); return a; };
    k.geluNew(x, o(n)); k.geluNewGrad(x, dy, o(n));
    const y = o(n), m = o(rows), r = o(rows); k.layerNorm(x, g, b, y, m, r, cols, 1e-5);
    k.layerNormGrad(x, dy, m, r, g, o(n), o(cols), o(cols), cols);
    const lse = o(rows); outs.push(Float32Array.of(k.softmaxCrossEntropy(x, t, lse, cols)));
    k.softmaxCrossEntropyGrad(x, t, lse, 1, o(n), cols);
    let hash = 0; for (const a of outs) { const u = new Uint8Array(a.buffer); for (let i = 0; i < u.length; i++) hash = (Math.imul(hash, 31) + u[i]) | 0; }
    console.log(hash);`;
  const run = (isa, threads) =>
    spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      env: { ...process.env, ZEROFLOW_POINTWISE_ISA: isa, T: String(threads) },
    }).stdout;
  const best = run('', 1);
  assert.ok(best.trim().length > 0);
  assert.equal(run('', 3), best);
  assert.equal(run('avx2', 2), best);
  assert.equal(run('generic', 1), best);
});
