/**
 * The fused ops (nn/fused-ops.ts) against the unfused tfjs compositions they replace, values and gradients,
 * on the backend the suite runs on (cpu here; packages/backend-native reruns the comparison on zeroflow-cpu).
 */
import { describe, expect, it } from 'vitest';
import {
  causalSelfAttention,
  FUSED_KERNELS,
  geluNew,
  LayerNorm,
  layerNorm,
  softmaxCrossEntropy,
  tf,
} from '../src/index.js';
import {
  attentionUnfused,
  compareWithGrads,
  crossEntropyUnfused,
  geluNewUnfused,
  layerNormUnfused,
  relErr,
  uniform,
} from './fused-reference.js';

const TOL = 1e-5;

describe('fused GELU (tanh)', () => {
  it('matches the unfused composition in value and gradient', () => {
    for (const shape of [[1], [3, 5], [7, 33], [2, 3, 129]]) {
      expect(compareWithGrads(geluNew, geluNewUnfused, [uniform(shape, 4)])).toBeLessThan(TOL);
    }
  });

  it('is exact-ish far into the tails, where 1 + tanh cancels', () => {
    const x = tf.tensor1d([-30, -12, -6, 0, 6, 12, 30, 1e20, -1e20]);
    const y = geluNew(x).dataSync();
    expect(y[0]).toBeLessThanOrEqual(0);
    expect(y[0]).toBeGreaterThan(-1e-30);
    expect(y[3]).toBe(0);
    expect(y[6]).toBeCloseTo(30, 5);
    expect(y[7]).toBe(Math.fround(1e20));
    expect(Number.isFinite(y[8])).toBe(true);
    // gelu'(-6) ~ -2.2e-8 (sigmoid tail): the unfused tanh form rounds 1 + tanh(u) to 0 there
    const [g] = tf.grads((v: tf.Tensor) => tf.sum(geluNew(v)))([tf.tensor1d([-6])]);
    expect(Math.abs(g.dataSync()[0])).toBeLessThan(1e-6);
  });

  it('saves one tensor for backward and leaks none', () => {
    const x = uniform([8, 16]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.grads((v: tf.Tensor) => tf.sum(geluNew(v)))([x]).forEach((t) => t.dispose());
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('fused LayerNorm', () => {
  it('matches the unfused composition in value and gradients (x, gamma, beta)', () => {
    for (const [rows, cols] of [
      [1, 1],
      [1, 7],
      [5, 1],
      [3, 33],
      [17, 256],
    ]) {
      const eps = 1e-5;
      const ref = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => layerNormUnfused(x, g, b, eps);
      const fused = (x: tf.Tensor, g: tf.Tensor, b: tf.Tensor) => layerNorm(x, g, b, eps);
      const inputs = [tf.add(uniform([rows, cols], 3), 5), uniform([cols]), uniform([cols])];
      expect(compareWithGrads(fused, ref, inputs)).toBeLessThan(TOL);
    }
  });

  it('takes rank 3 inputs, no beta, and keeps its HF parameter names', () => {
    const ln = new LayerNorm(9, 1e-5, { bias: false });
    expect([...ln.namedParameters()].map(([n]) => n)).toEqual(['weight']);
    const x = uniform([2, 3, 9], 2);
    const g = uniform([9]);
    expect(
      compareWithGrads(
        (a, b) => layerNorm(a, b, null, 1e-5),
        (a, b) => layerNormUnfused(a, b, null, 1e-5),
        [x, g],
      ),
    ).toBeLessThan(TOL);
    expect(new LayerNorm(4).forward(tf.ones([2, 4])).shape).toEqual([2, 4]);
  });

  it('keeps accuracy on rows with a large common offset (two-pass statistics)', () => {
    const x = tf.add(uniform([4, 64], 1e-2), 1e3);
    const fused = layerNorm(x, tf.ones([64]), null, 1e-5);
    const exact = tf.tidy(() => {
      const v = tf.sub(x, 1e3); // exact in float32 at this magnitude
      return layerNormUnfused(v, tf.ones([64]), null, 1e-5);
    });
    expect(relErr(fused, exact)).toBeLessThan(5e-3); // bounded by x's own float32 rounding at 1e3
  });

  it('registers its kernels on cpu', () => {
    for (const name of Object.values(FUSED_KERNELS)) expect(tf.getKernel(name, 'cpu')).toBeDefined();
  });
});

describe('fused softmax cross-entropy', () => {
  const ids = (v: number[]) => tf.tensor(v, [v.length], 'int32');

  it('matches logSumExp - logit[target] with ignored targets, in value and gradient', () => {
    for (const [rows, vocab, scale] of [
      [1, 2, 1], // tf.oneHot (the reference) needs a depth >= 2
      [1, 5, 1],
      [6, 37, 3],
      [9, 1000, 80], // large logits: the max shift keeps exp finite
    ]) {
      const t = ids(Array.from({ length: rows }, (_, i) => (i % 4 === 3 ? -100 : (i * 7) % vocab)));
      const logits = uniform([rows, vocab], scale);
      expect(
        compareWithGrads(
          (x) => softmaxCrossEntropy(x, t),
          (x) => crossEntropyUnfused(x, t),
          [logits],
        ),
      ).toBeLessThan(TOL);
    }
  });

  it('ignores every row when all targets are negative (loss and gradient 0) and rejects targets >= vocab', () => {
    const logits = uniform([2, 3, 4]);
    const t = tf.tensor([-100, -1, -100, -100, -100, -100], [2, 3], 'int32');
    expect(softmaxCrossEntropy(logits, t).dataSync()[0]).toBe(0);
    const [g] = tf.grads((x: tf.Tensor) => softmaxCrossEntropy(x, t))([logits]);
    expect(Math.max(...g.dataSync())).toBe(0);
    expect(() => softmaxCrossEntropy(logits, tf.tensor([0, 4, 0, 0, 0, 0], [2, 3], 'int32'))).toThrow(/>= vocab/);
    expect(() => softmaxCrossEntropy(logits, tf.tensor([0, 1], [2], 'int32'))).toThrow(/do not match/);
  });

  it('scales the gradient by dy and leaks no tensor', () => {
    const logits = uniform([4, 11]);
    const t = ids([1, 2, -100, 10]);
    const before = tf.memory().numTensors;
    const [g1] = tf.grads((x: tf.Tensor) => softmaxCrossEntropy(x, t))([logits]);
    const [g3] = tf.grads((x: tf.Tensor) => tf.mul(softmaxCrossEntropy(x, t), 3))([logits]);
    expect(tf.tidy(() => relErr(g3, tf.mul(g1, 3)))).toBeLessThan(1e-6);
    tf.dispose([g1, g3]);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('fused causal self-attention', () => {
  it('matches the unfused composition (split, transposes, masked softmax, matmuls) in value and gradient', () => {
    // [batch, seq, heads, headDim]: one token, one head, odd sizes, and a sequence over two 64-query blocks
    for (const [b, t, h, d] of [
      [1, 1, 1, 1],
      [2, 5, 3, 4],
      [1, 17, 2, 7],
      [1, 70, 2, 8],
    ]) {
      const qkv = uniform([b, t, 3 * h * d], 2);
      const fused = (x: tf.Tensor) => causalSelfAttention(x as tf.Tensor3D, h);
      expect(compareWithGrads(fused, (x) => attentionUnfused(x, h), [qkv])).toBeLessThan(TOL);
    }
  });

  it('masks the future: changing a later token leaves earlier outputs bit-identical', () => {
    const qkv = uniform([1, 6, 3 * 8], 2);
    const changed = tf.concat([tf.slice(qkv, [0, 0, 0], [1, 5, 24]), tf.fill([1, 1, 24], 7)], 1);
    const [a, b] = [qkv, changed].map((x) => causalSelfAttention(x as tf.Tensor3D, 2).slice([0, 0, 0], [1, 5, 8]));
    expect(Array.from(b.dataSync())).toEqual(Array.from(a.dataSync()));
  });

  it('rejects shapes that are not [batch, seq, 3 * heads * headDim] and leaks no tensor', () => {
    expect(() => causalSelfAttention(uniform([1, 4, 10]) as tf.Tensor3D, 2)).toThrow(/3 \* heads \* headDim/);
    expect(() => causalSelfAttention(uniform([1, 4, 12]) as tf.Tensor3D, 3)).toThrow(/3 heads/);
    const qkv = uniform([2, 9, 12]);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      tf.grads((x: tf.Tensor) => tf.sum(causalSelfAttention(x as tf.Tensor3D, 2)))([qkv]).forEach((g) => g.dispose());
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
