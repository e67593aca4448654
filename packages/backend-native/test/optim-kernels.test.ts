/**
 * The native optimizer kernels against core's own Adam / AdamW / SGD (packages/core/src/optim): bit-identical
 * parameters and state after several steps, for 1 and 2 threads and SharedArrayBuffer-backed buffers; and the
 * owners' gradient loops (accumulation, unscale + sum of squares, clipping) against core's flat-loops.ts.
 */
import { Adam, AdamW, addIntoLoop, SGD, scaleLoop, scaleSumOfSquaresLoop, setFlatKernels } from '@zeroflow/core';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeFlatKernels, setNativeThreads } from '../src/index.js';

const kernels = nativeFlatKernels();

let seed = 99;
function random(n: number, scale: number, shared = false): Float32Array {
  const out = shared ? new Float32Array(new SharedArrayBuffer(n * 4)) : new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    out[i] = ((seed / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

/** Bit-level equality (NaN-safe, -0 vs 0 distinguished), with the first mismatch in the message. */
function expectSameBits(got: Float32Array, want: Float32Array, what: string) {
  const a = new Uint32Array(got.buffer, got.byteOffset, got.length);
  const b = new Uint32Array(want.buffer, want.byteOffset, want.length);
  const i = a.findIndex((v, k) => v !== b[k]);
  expect(i, `${what}: first mismatch at ${i} (${got[i]} vs ${want[i]})`).toBe(-1);
}

describe.skipIf(!kernels)('native optimizer kernels', () => {
  afterAll(() => setNativeThreads(0));
  const n = 100_003;

  it.each([
    ['AdamW (decoupled decay)', true, 0.05, true],
    ['Adam (L2 decay)', false, 0.01, true],
    ['AdamW without bias correction', true, 0, false],
  ] as const)('%s is bit-identical to core over 6 steps, 1 and 2 threads', (_name, adamW, wd, biasCorrection) => {
    for (const threads of [1, 2]) {
      setNativeThreads(threads);
      const group = {
        lr: 3e-3,
        betas: [0.9, 0.98] as [number, number],
        eps: 1e-7,
        weight_decay: wd,
        bias_correction: biasCorrection,
      };
      const opt = new Adam([group], { adam_w_mode: adamW });
      const params = random(n, 1, threads === 2);
      const nativeParams = Float32Array.from(params);
      const expAvg = new Float32Array(n);
      const expAvgSq = new Float32Array(n);
      for (let step = 1; step <= 6; step++) {
        const grads = random(n, step === 3 ? 100 : 0.1);
        opt.step([{ params, grads }]);
        kernels!.adam(nativeParams, grads, expAvg, expAvgSq, 3e-3, 0.9, 0.98, 1e-7, wd, step, adamW, biasCorrection);
      }
      const state = opt.stateDict().groups[0].buffers;
      expectSameBits(nativeParams, params, `params (${threads} threads)`);
      expectSameBits(expAvg, state.exp_avg, 'exp_avg');
      expectSameBits(expAvgSq, state.exp_avg_sq, 'exp_avg_sq');
    }
  });

  it('Adam with a deferred clip scale matches core on clipped-in-place gradients, 1 and 2 threads', () => {
    for (const threads of [1, 2]) {
      setNativeThreads(threads);
      const group = { lr: 1e-3, betas: [0.9, 0.999] as [number, number], eps: 1e-8, weight_decay: 0.1 };
      const clippedOpt = new AdamW([group]);
      const fusedTs = new AdamW([group]);
      const params = random(n, 1);
      const fusedParams = Float32Array.from(params);
      const nativeParams = Float32Array.from(params);
      const expAvg = new Float32Array(n);
      const expAvgSq = new Float32Array(n);
      for (let step = 1; step <= 4; step++) {
        const grads = random(n, 0.3);
        for (let i = 0; i < n; i += 89) grads[i] = -0;
        const c = step === 2 ? 1 : 0.37 / step;
        const clipped = Float32Array.from(grads);
        scaleLoop(clipped, c);
        clippedOpt.step([{ params, grads: clipped }]);
        setFlatKernels(null);
        try {
          fusedTs.step([{ params: fusedParams, grads: Float32Array.from(grads), gradScale: c }]);
        } finally {
          setFlatKernels(kernels);
        }
        kernels!.adam(nativeParams, grads, expAvg, expAvgSq, 1e-3, 0.9, 0.999, 1e-8, 0.1, step, true, true, c);
      }
      expectSameBits(fusedParams, params, `TS fused params (${threads} threads)`);
      expectSameBits(nativeParams, params, `native fused params (${threads} threads)`);
      expectSameBits(expAvg, clippedOpt.stateDict().groups[0].buffers.exp_avg, 'exp_avg');
      expectSameBits(expAvgSq, clippedOpt.stateDict().groups[0].buffers.exp_avg_sq, 'exp_avg_sq');
    }
  });

  it.each([
    ['plain with weight decay', 0, 0, 0.01, false],
    ['momentum', 0.9, 0, 0.001, false],
    ['momentum with dampening', 0.9, 0.2, 0, false],
    ['Nesterov', 0.8, 0, 0.01, true],
  ] as const)('SGD %s is bit-identical to core over 5 steps', (_name, momentum, dampening, wd, nesterov) => {
    for (const threads of [1, 2]) {
      setNativeThreads(threads);
      const opt = new SGD([{ lr: 0.05, momentum, dampening, weight_decay: wd, nesterov }]);
      const params = random(n, 1);
      const nativeParams = Float32Array.from(params);
      const buf = new Float32Array(n);
      for (let step = 1; step <= 5; step++) {
        const grads = random(n, 0.1);
        opt.step([{ params, grads }]);
        kernels!.sgd(nativeParams, grads, momentum ? buf : null, 0.05, momentum, dampening, wd, nesterov, step === 1);
      }
      expectSameBits(nativeParams, params, `params (${threads} threads)`);
      if (momentum) expectSameBits(buf, opt.stateDict().groups[0].buffers.momentum_buffer, 'momentum_buffer');
    }
  });
});

describe.skipIf(!kernels?.addInto)('native gradient loops', () => {
  afterAll(() => setNativeThreads(0));
  // odd sizes: under one lane row, lane tails, one block +- 1, several blocks with a tail
  const sizes = [1, 7, 9, 2049, 32767, 32768, 32769, 100_003, 250_001];

  /** Random values with some -0, +0, subnormals and large ones mixed in. */
  function gradients(n: number, shared: boolean): Float32Array {
    const g = random(n, 0.5, shared);
    for (let i = 0; i < n; i += 97) g[i] = -0;
    for (let i = 13; i < n; i += 101) g[i] = 0;
    for (let i = 29; i < n; i += 211) g[i] = -1e-42;
    for (let i = 31; i < n; i += 307) g[i] = 3e4;
    return g;
  }

  it.each(sizes)('addInto (accumulate and fresh) is bit-identical to core, n = %i', (n) => {
    for (const threads of [1, 2]) {
      setNativeThreads(threads);
      const src = gradients(n, threads === 2);
      const base = gradients(n, false);
      for (const fresh of [false, true]) {
        const want = Float32Array.from(base);
        const got = Float32Array.from(base);
        addIntoLoop(want, src, fresh);
        kernels!.addInto!(got, src, fresh);
        expectSameBits(got, want, `addInto fresh=${fresh} (${threads} threads)`);
      }
      // fresh over zeros equals accumulating into zeros, -0 included
      const zeros = new Float32Array(n);
      addIntoLoop(zeros, src, false);
      const fresh = new Float32Array(n).fill(7);
      kernels!.addInto!(fresh, src, true);
      expectSameBits(fresh, zeros, `fresh vs 0 + src (${threads} threads)`);
    }
  });

  it.each(sizes)('scaleSumOfSquares and scale are bit-identical to core, n = %i', (n) => {
    for (const threads of [1, 2]) {
      setNativeThreads(threads);
      for (const s of [1, 1 / 3, 0.125, 1 / 65536]) {
        const want = gradients(n, threads === 2);
        const got = Float32Array.from(want);
        const sumWant = scaleSumOfSquaresLoop(want, s);
        const sumGot = kernels!.scaleSumOfSquares!(got, s);
        expect(Object.is(sumGot, sumWant), `sum ${sumGot} vs ${sumWant} (scale ${s}, ${threads} threads)`).toBe(true);
        expectSameBits(got, want, `scaled values (scale ${s}, ${threads} threads)`);
        scaleLoop(want, 0.7312);
        kernels!.scale!(got, 0.7312);
        expectSameBits(got, want, `clipped values (${threads} threads)`);
      }
    }
  });

  it('the lane-ordered sum is within rounding of a float64 running sum', () => {
    const x = gradients(100_003, false);
    let plain = 0;
    for (let i = 0; i < x.length; i++) plain += x[i] * x[i];
    expect(Math.abs(kernels!.scaleSumOfSquares!(x, 1) - plain) / plain).toBeLessThan(1e-12);
  });
});
