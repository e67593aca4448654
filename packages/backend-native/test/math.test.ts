/**
 * The native unary, Pow, reduction (Sum/Max/Min/Mean) and GatherV2 kernels against the cpu kernels: odd and
 * threaded sizes, every axis combination (contiguous or not, keepDims, size-1 dims), NaN, int32 fallbacks,
 * gradients through a GPT-like block, and results independent of the thread count.
 */
import { tf } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { nativeBackendStatus, planReduce, setNativeThreads } from '../src/index.js';
import { compareBackends, NATIVE, randomTensor, valuesOn } from './helpers.js';

describe('planReduce', () => {
  it('views contiguous reductions in place and transposes the others', () => {
    expect(planReduce([8, 128, 256], [0, 1])).toEqual({ outer: 1, r: 1024, inner: 256, perm: null });
    expect(planReduce([1024, 768], [1])).toEqual({ outer: 1024, r: 768, inner: 1, perm: null });
    expect(planReduce([2, 1, 3, 5], [0, 2])).toEqual({ outer: 1, r: 6, inner: 5, perm: null }); // size-1 dim between
    expect(planReduce([2, 4, 3], [0, 2])).toEqual({ outer: 4, r: 6, inner: 1, perm: [1, 0, 2] });
    expect(planReduce([2, 1, 3], [1])).toEqual({ outer: 6, r: 1, inner: 1, perm: null });
  });
});

describe.skipIf(!nativeBackendStatus()?.active)('native math kernels', () => {
  it('are registered', () => {
    const names = nativeBackendStatus()?.nativeKernels ?? [];
    for (const k of [
      'Sum',
      'Max',
      'Min',
      'Mean',
      'Pow',
      'Tanh',
      'Sqrt',
      'Rsqrt',
      'Square',
      'Neg',
      'GatherV2',
      'Concat',
    ])
      expect(names).toContain(k);
  });

  it('unary ops match the cpu kernels to 1e-5 relative, specials included', () => {
    const specials = tf.tensor1d([0, -0, 1, -1, 1e-30, -1e-30, 88, -88, 1e30, -1e30, Infinity, -Infinity, NaN, 3.5]);
    const unary: [string, (x: tf.Tensor) => tf.Tensor][] = [
      ['neg', tf.neg],
      ['square', tf.square],
      ['sqrt', (x) => tf.sqrt(tf.abs(x))],
      ['rsqrt', (x) => tf.rsqrt(tf.abs(x))],
      ['tanh', tf.tanh],
      ['abs', tf.abs],
      ['reciprocal', tf.reciprocal],
      ['log', (x) => tf.log(tf.abs(x))],
      ['sigmoid', tf.sigmoid],
      ['relu', tf.relu],
    ];
    for (const shape of [[1], [7, 13], [3, 1001], [70000]]) {
      const x = tf.mul(randomTensor(shape), 6);
      for (const [name, f] of unary) {
        expect(
          compareBackends(() => f(x)),
          `${name} ${shape}`,
        ).toBeLessThanOrEqual(1e-5);
        const s = valuesOn(NATIVE, () => f(specials))[0];
        const c = valuesOn('cpu', () => f(specials))[0];
        for (let i = 0; i < s.length; i++) {
          const ok = Object.is(s[i], c[i]) || Math.abs(s[i] - c[i]) <= 1e-5 * Math.max(1, Math.abs(c[i]));
          expect(ok, `${name}(${specials.dataSync()[i]}): ${s[i]} vs ${c[i]}`).toBe(true);
        }
      }
      x.dispose();
    }
    specials.dispose();
    const ints = tf.tensor1d([-3, 0, 4], 'int32');
    expect(Array.from(valuesOn(NATIVE, () => tf.neg(ints))[0])).toEqual([3, 0, -4]);
    ints.dispose();
  });

  it('pow with a scalar exponent (float or int32) matches, other layouts fall back', () => {
    const x = tf.mul(randomTensor([5, 1001]), 3);
    const pos = tf.add(tf.abs(x), 0.01);
    for (const e of [3, 2, 1, 0, -1, 0.5, 1.7, -2.5]) {
      const base = Number.isInteger(e) ? x : pos;
      expect(
        compareBackends(() => tf.pow(base, e)),
        `pow ${e}`,
      ).toBeLessThanOrEqual(1e-5);
      expect(
        compareBackends(() => tf.pow(base, tf.scalar(e))),
        `pow scalar ${e}`,
      ).toBeLessThanOrEqual(1e-5);
    }
    expect(compareBackends(() => tf.pow(pos, tf.tensor3d([1.5, 2, 3], [3, 1, 1])))).toBeLessThanOrEqual(1e-5);
    expect(compareBackends(() => tf.pow(tf.scalar(2), pos))).toBeLessThanOrEqual(1e-5);
    tf.dispose([x, pos]);
  });

  it('sum, max, min and mean match over every axis combination, with keepDims and NaN', () => {
    const shapes = [[13], [7, 1], [5, 9], [300, 257], [3, 1, 5, 7], [2, 33, 65, 3], [8, 128, 64]];
    for (const shape of shapes) {
      const x = randomTensor(shape);
      const rank = shape.length;
      for (let mask = 1; mask < 1 << rank; mask++) {
        const axes = [...Array(rank).keys()].filter((d) => mask & (1 << d));
        for (const keepDims of [false, true]) {
          for (const [name, f] of [
            ['sum', tf.sum],
            ['max', tf.max],
            ['min', tf.min],
            ['mean', tf.mean],
          ] as const) {
            expect(
              compareBackends(() => f(x, axes, keepDims)),
              `${name} ${shape} ${axes} ${keepDims}`,
            ).toBeLessThanOrEqual(1e-5);
            const shapeNative = tf.tidy(() => f(x, axes, keepDims).shape);
            tf.setBackend('cpu');
            const shapeCpu = tf.tidy(() => f(x, axes, keepDims).shape);
            tf.setBackend(NATIVE);
            expect(shapeNative).toEqual(shapeCpu);
          }
        }
      }
      expect(compareBackends(() => tf.sum(x))).toBeLessThanOrEqual(1e-5);
      x.dispose();
    }
    const withNaN = tf.tensor2d([1, NaN, 3, 4, 5, 6, NaN, 0, -1, 2, 2, 2], [3, 4]);
    for (const f of [tf.max, tf.min, tf.sum]) {
      for (const axis of [0, 1]) {
        const n = valuesOn(NATIVE, () => f(withNaN, axis))[0];
        const c = valuesOn('cpu', () => f(withNaN, axis))[0];
        expect(Array.from(n)).toEqual(Array.from(c));
      }
    }
    withNaN.dispose();
    const ints = tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32');
    expect(Array.from(valuesOn(NATIVE, () => tf.sum(ints, 0))[0])).toEqual([4, 6]);
    ints.dispose();
  });

  it('gather matches the cpu kernel on any axis, float32 and int32, and throws on bad indices', () => {
    const table = randomTensor([37, 5, 6]);
    for (const axis of [0, 1, 2]) {
      const dim = table.shape[axis];
      const idx = tf.tensor2d(
        Int32Array.from({ length: 12 }, (_, k) => (k * 7) % dim),
        [3, 4],
        'int32',
      );
      expect(compareBackends(() => tf.gather(table, idx, axis))).toBe(0);
      idx.dispose();
    }
    const ints = tf.tensor2d(
      Int32Array.from({ length: 12 }, (_, k) => k),
      [4, 3],
      'int32',
    );
    const ix = tf.tensor1d([3, 0, 3], 'int32');
    expect(valuesOn(NATIVE, () => tf.gather(ints, ix))).toEqual(valuesOn('cpu', () => tf.gather(ints, ix)));
    const bad = tf.tensor1d([0, 40], 'int32');
    expect(() => tf.tidy(() => tf.gather(table, bad).dataSync())).toThrow();
    tf.dispose([table, ints, ix, bad]);
  });

  it('gradients through a GPT-like block (layer norm, gelu, embedding) match the cpu backend', () => {
    const wte = randomTensor([50, 16]);
    const w = randomTensor([16, 32]);
    const gamma = randomTensor([16]);
    const ids = tf.tensor2d(
      Int32Array.from({ length: 14 }, (_, k) => (k * 13) % 50),
      [2, 7],
      'int32',
    );
    const err = compareBackends(() =>
      tf.grads((e: tf.Tensor, wt: tf.Tensor, g: tf.Tensor) => {
        const x = tf.gather(e, ids); // [2,7,16]
        const mu = tf.mean(x, -1, true);
        const xc = tf.sub(x, mu);
        const v = tf.mean(tf.square(xc), -1, true);
        const ln = tf.mul(tf.mul(xc, tf.rsqrt(tf.add(v, 1e-5))), g);
        const h = tf.matMul(tf.reshape(ln, [14, 16]), wt);
        const inner = tf.mul(tf.add(h, tf.mul(tf.pow(h, 3), 0.044715)), Math.sqrt(2 / Math.PI));
        const gelu = tf.mul(tf.mul(h, 0.5), tf.add(tf.tanh(inner), 1));
        return tf.add(tf.sum(tf.mul(gelu, gelu)), tf.sum(tf.max(h, 0)));
      })([wte, w, gamma]),
    );
    expect(err).toBeLessThanOrEqual(1e-5);
    tf.dispose([wte, w, gamma, ids]);
  });

  it('results do not depend on the thread count', () => {
    const x = randomTensor([16, 1024, 5]); // above one 32768-element chunk: threaded
    const run = () =>
      valuesOn(NATIVE, () => [
        tf.sum(x, [0, 1]),
        tf.sum(x, 2),
        tf.mean(x, [0, 2]),
        tf.max(x, 1),
        tf.tanh(x),
        tf.pow(x, 3),
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
      x.dispose();
    }
  });
});

describe.skipIf(!nativeBackendStatus()?.active)('concat by runs', () => {
  it('matches the cpu kernel exactly on every axis, float32 and int32, with fallbacks', () => {
    const shapes: [number[], number[], number][] = [
      [[8, 12, 20], [8, 12, 20], 2],
      [[8, 12, 3], [8, 12, 20], 2],
      [[8, 5, 20], [8, 12, 20], 1],
      [[3, 12, 20], [8, 12, 20], 0],
      [[7], [9], 0],
    ];
    for (const [sa, sb, axis] of shapes) {
      const a = randomTensor(sa);
      const b = randomTensor(sb);
      expect(
        compareBackends(() => tf.concat([a, b, tf.slice(a, 0, a.shape[0])], axis)),
        `${sa} ${sb} ${axis}`,
      ).toBe(0);
      tf.dispose([a, b]);
    }
    const i = tf.tensor2d([1, 2, 3, 4], [2, 2], 'int32');
    expect(valuesOn(NATIVE, () => tf.concat([i, i], 1))).toEqual(valuesOn('cpu', () => tf.concat([i, i], 1)));
    const empty = tf.zeros([2, 0]);
    expect(compareBackends(() => tf.concat([tf.cast(i, 'float32'), empty], 1))).toBe(0);
    tf.dispose([i, empty]);
    const x = randomTensor([4, 6]);
    expect(
      compareBackends(() => tf.grads((t: tf.Tensor) => tf.sum(tf.square(tf.concat([t, tf.mul(t, 2)], 1))))([x])),
    ).toBe(0);
    x.dispose();
  });
});
