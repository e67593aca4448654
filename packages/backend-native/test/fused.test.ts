/**
 * The native fused GELU, LayerNorm and cross-entropy kernels (zeroflow-cpu) against core's TS kernels (cpu)
 * and against the unfused tfjs compositions, values and gradients: odd sizes, rows of 1, threaded sizes,
 * large logits, ignored targets; results independent of the thread count.
 */
import { causalSelfAttention, geluNew, layerNorm, softmaxCrossEntropy, tf } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import {
  attentionUnfused,
  compareWithGrads,
  crossEntropyUnfused,
  geluNewUnfused,
  layerNormUnfused,
} from '../../core/test/fused-reference.js';
import { nativeBackendStatus, setNativeThreads } from '../src/index.js';
import { compareBackends, NATIVE, randomTensor, valuesOn } from './helpers.js';

const TOL = 1e-5;

/** Runs fn with the native backend active. */
function onNative<T>(fn: () => T): T {
  const previous = tf.getBackend();
  tf.setBackend(NATIVE);
  try {
    return fn();
  } finally {
    tf.setBackend(previous);
  }
}

/** Outputs and input gradients (through a fixed projection) of a scalar-or-tensor op, for compareBackends. */
function withGrads(op: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): () => tf.Tensor[] {
  return () => {
    const y = op(...inputs);
    const w = tf.sin(tf.range(0, y.size).reshape(y.shape));
    const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(op(...xs), w)))(inputs);
    return [y, ...grads];
  };
}

const ids = (n: number, vocab: number) =>
  tf.tensor(
    Array.from({ length: n }, (_, i) => (i % 5 === 4 ? -100 : (i * 31) % vocab)),
    [n],
    'int32',
  );

describe.skipIf(!nativeBackendStatus()?.active)('native fused kernels', () => {
  it('are registered', () => {
    const names = nativeBackendStatus()?.nativeKernels ?? [];
    for (const k of ['ZeroflowGeluNew', 'ZeroflowGeluNewGrad', 'ZeroflowLayerNorm', 'ZeroflowLayerNormGrad'])
      expect(names).toContain(k);
    expect(names).toContain('ZeroflowSoftmaxCrossEntropy');
    expect(names).toContain('ZeroflowSoftmaxCrossEntropyGrad');
    expect(names).toContain('ZeroflowCausalAttention');
    expect(names).toContain('ZeroflowCausalAttentionGrad');
  });

  it('causal attention matches the cpu kernel and the unfused composition, values and gradient', () => {
    // [batch, seq, heads, headDim]: a single token, odd head sizes, GPT's head size, 3 query blocks (the last partial)
    for (const [b, t, h, d] of [
      [1, 1, 1, 1],
      [2, 5, 3, 7],
      [2, 33, 2, 64],
      [1, 150, 3, 16],
    ]) {
      const qkv = tf.mul(randomTensor([b, t, 3 * h * d]), 2);
      const op = (x: tf.Tensor) => causalSelfAttention(x as tf.Tensor3D, h);
      expect(compareBackends(withGrads(op, [qkv]))).toBeLessThan(TOL);
      expect(onNative(() => compareWithGrads(op, (x) => attentionUnfused(x, h), [qkv]))).toBeLessThan(TOL);
    }
  });

  it('GELU matches the cpu kernel and the unfused composition, values and gradient', () => {
    for (const shape of [[1], [3, 5], [7, 33], [64, 1031]]) {
      const x = tf.mul(randomTensor(shape), 5);
      expect(compareBackends(withGrads(geluNew, [x]))).toBeLessThan(TOL);
      expect(onNative(() => compareWithGrads(geluNew, geluNewUnfused, [x]))).toBeLessThan(TOL);
    }
  });

  it('LayerNorm matches the cpu kernel and the unfused composition, with and without beta', () => {
    for (const [rows, cols] of [
      [1, 1],
      [1, 9],
      [7, 1],
      [5, 33],
      [1030, 257],
    ]) {
      const x = tf.add(tf.mul(randomTensor([rows, cols]), 3), 2);
      const g = randomTensor([cols]);
      const b = randomTensor([cols]);
      const ln = (a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => layerNorm(a, gg, bb, 1e-5);
      const lnRef = (a: tf.Tensor, gg: tf.Tensor, bb: tf.Tensor) => layerNormUnfused(a, gg, bb, 1e-5);
      expect(compareBackends(withGrads(ln, [x, g, b]))).toBeLessThan(TOL);
      expect(onNative(() => compareWithGrads(ln, lnRef, [x, g, b]))).toBeLessThan(TOL);
      const noBias = (a: tf.Tensor, gg: tf.Tensor) => layerNorm(a, gg, null, 1e-5);
      expect(compareBackends(withGrads(noBias, [x, g]))).toBeLessThan(TOL);
    }
  });

  it('cross-entropy matches the cpu kernel and the unfused composition, large logits and ignored rows', () => {
    for (const [rows, vocab, scale] of [
      [1, 2, 1],
      [5, 37, 3],
      [9, 1000, 80],
      [130, 4099, 10],
    ]) {
      const logits = tf.mul(randomTensor([rows, vocab]), scale);
      const t = ids(rows, vocab);
      const ce = (x: tf.Tensor) => softmaxCrossEntropy(x, t);
      expect(compareBackends(withGrads(ce, [logits]))).toBeLessThan(TOL);
      expect(onNative(() => compareWithGrads(ce, (x) => crossEntropyUnfused(x, t), [logits]))).toBeLessThan(TOL);
    }
  });

  it('results do not depend on the thread count', () => {
    const x = randomTensor([1030, 257]); // many row blocks and element chunks: threaded
    const g = randomTensor([257]);
    const t = ids(1030, 257);
    const qkv = randomTensor([3, 70, 3 * 3 * 8]); // 9 (batch, head) tasks of 2 query blocks
    const run = () =>
      valuesOn(NATIVE, () => [
        ...withGrads(geluNew, [x])(),
        ...withGrads((a, gg) => layerNorm(a, gg, gg, 1e-5), [x, g])(),
        ...withGrads((a) => softmaxCrossEntropy(a, t), [x])(),
        ...withGrads((a) => causalSelfAttention(a as tf.Tensor3D, 3), [qkv])(),
      ]);
    try {
      setNativeThreads(1);
      const one = run();
      setNativeThreads(3);
      expect(run()).toEqual(one);
      setNativeThreads(2);
      expect(run()).toEqual(one);
    } finally {
      setNativeThreads(0);
    }
  });

  it('leaks no tensor across training-like steps', () => {
    onNative(() => {
      const x = randomTensor([6, 40]);
      const g = randomTensor([40]);
      const t = ids(6, 40);
      const step = () =>
        tf.grads((a: tf.Tensor, gg: tf.Tensor) => softmaxCrossEntropy(geluNew(layerNorm(a, gg, gg, 1e-5)), t))([x, g]);
      tf.dispose(step());
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) tf.dispose(step());
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});
