// zeroflow_kernels' opt-in bf16 matmul (Intel AMX): against a float64 reference computed on bf16-rounded
// inputs (so only the fp32 accumulation differs) on odd sizes, transposes, batch broadcasts and accumulate;
// independent of the thread count; false (C untouched) where AMX is unavailable.
// Run: node --test native/test/
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(import.meta.url);
const { loadKernelsAddon, kernelsAddonUnavailableReason } = require('../index.cjs');
const addon = loadKernelsAddon();
const skip = addon ? false : `kernels addon unavailable: ${kernelsAddonUnavailableReason()}`;
const amx = addon?.info().amxBf16 ?? false;

let seed = 777;
function randomArray(n) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    out[i] = (seed / 2 ** 32) * 2 - 1;
  }
  return out;
}
const bits = new Uint32Array(1);
const f32 = new Float32Array(bits.buffer);
function bf16(x) {
  f32[0] = x;
  const b = bits[0];
  bits[0] = (((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) << 16) >>> 0;
  return f32[0];
}

/** Reference on bf16-rounded inputs in double; returns [C, sum |a||b| per element] for the tolerance. */
function reference(a, b, c0, batch, m, n, k, ta, tb, aBatches, bBatches) {
  const c = new Float64Array(batch * m * n);
  const mag = new Float64Array(batch * m * n);
  for (let bi = 0; bi < batch; bi++) {
    const ao = (aBatches === 1 ? 0 : bi) * m * k;
    const bo = (bBatches === 1 ? 0 : bi) * k * n;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = c0 ? c0[(bi * m + i) * n + j] : 0;
        let g = Math.abs(s);
        for (let p = 0; p < k; p++) {
          const x = bf16(a[ao + (ta ? p * m + i : i * k + p)]) * bf16(b[bo + (tb ? j * k + p : p * n + j)]);
          s += x;
          g += Math.abs(x);
        }
        c[(bi * m + i) * n + j] = s;
        mag[(bi * m + i) * n + j] = g;
      }
  }
  return [c, mag];
}

test('bf16 AMX matmul matches a bf16-input float64 reference (odd sizes, transposes, broadcast, accumulate)', {
  skip: skip || (!amx && 'AMX bf16 unavailable on this machine'),
}, () => {
  const cases = [
    [1, 1, 1, 1, false, false, 1, 1, false],
    [1, 7, 33, 130, false, true, 1, 1, false],
    [3, 33, 17, 64, true, false, 3, 1, false],
    [2, 40, 70, 45, true, true, 1, 2, true],
    [1, 128, 256, 96, false, false, 1, 1, true],
  ];
  for (const [batch, m, n, k, ta, tb, aBatches, bBatches, acc] of cases) {
    const a = randomArray(aBatches * m * k);
    const b = randomArray(bBatches * k * n);
    const c = acc ? randomArray(batch * m * n) : new Float32Array(batch * m * n);
    const c0 = acc ? Float32Array.from(c) : null;
    assert.equal(addon.sgemmBatchedBf16(a, b, c, batch, m, n, k, ta, tb, acc), true);
    const [want, mag] = reference(a, b, c0, batch, m, n, k, ta, tb, aBatches, bBatches);
    for (let i = 0; i < want.length; i++) {
      const err = Math.abs(c[i] - want[i]);
      // fp32 accumulation over k terms: at most ~k ulps of the magnitude sum
      assert.ok(err <= k * 1.2e-7 * mag[i] + 1e-7, `[${batch},${m},${n},${k}] ${i}: ${c[i]} vs ${want[i]}`);
    }
  }
});

test('bf16 AMX matmul does not depend on the thread count', { skip: skip || (!amx && 'no AMX') }, () => {
  const [m, n, k] = [200, 96, 300];
  const a = randomArray(m * k);
  const b = randomArray(k * n);
  const run = (threads) => {
    addon.setNumThreads(threads);
    const c = new Float32Array(m * n);
    addon.sgemmBatchedBf16(a, b, c, 1, m, n, k, false, false);
    return c;
  };
  try {
    assert.deepEqual(run(3), run(1));
  } finally {
    addon.setNumThreads(0);
  }
});

test('without AMX, sgemmBatchedBf16 returns false and leaves C untouched', {
  skip: skip || (amx && 'AMX present'),
}, () => {
  const c = Float32Array.of(5);
  assert.equal(addon.sgemmBatchedBf16(Float32Array.of(1), Float32Array.of(2), c, 1, 1, 1, 1, false, false), false);
  assert.equal(c[0], 5);
});
