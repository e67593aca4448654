/**
 * The native optimizer kernels against core's own Adam / AdamW / SGD (packages/core/src/optim): bit-identical
 * parameters and state after several steps, for 1 and 2 threads and SharedArrayBuffer-backed buffers.
 */
import { Adam, SGD } from '@zeroflow/core';
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
