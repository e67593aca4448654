/**
 * The native Add/Sub/Multiply/RealDiv, Exp, Softmax and Transpose kernels against the cpu kernels: broadcast
 * layouts (and the patterns that fall back), odd and threaded sizes, int32 fallbacks, and gradients.
 */
import { tf } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { nativeBackendStatus, planBinary } from '../src/index.js';
import { compareBackends, NATIVE, randomTensor, valuesOn } from './helpers.js';

const ops: [string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor][] = [
  ['add', tf.add],
  ['sub', tf.sub],
  ['mul', tf.mul],
  ['div', tf.div],
];

describe('planBinary', () => {
  it('maps the supported broadcasts and rejects the others', () => {
    expect(planBinary([3, 5], [3, 5])).toEqual({ outShape: [3, 5], full: 'a', mid: 15, inner: 1 });
    expect(planBinary([], [3, 5])).toEqual({ outShape: [3, 5], full: 'b', mid: 1, inner: 1 });
    expect(planBinary([2, 4, 6], [6])).toEqual({ outShape: [2, 4, 6], full: 'a', mid: 6, inner: 1 });
    expect(planBinary([2, 4, 6], [2, 4, 1])).toEqual({ outShape: [2, 4, 6], full: 'a', mid: 8, inner: 6 });
    expect(planBinary([2, 1, 4, 6], [1, 1, 4, 1])).toEqual({ outShape: [2, 1, 4, 6], full: 'a', mid: 4, inner: 6 });
    expect(planBinary([2, 4, 1, 6], [2, 1, 1, 6])).toBeNull(); // kept dims 0 and 3 around a broadcast one
    expect(planBinary([2, 4, 1, 6], [4, 1, 6])).toEqual({ outShape: [2, 4, 1, 6], full: 'a', mid: 24, inner: 1 });
    expect(planBinary([5, 1], [1, 7])).toBeNull(); // both broadcast
  });
});

describe.skipIf(!nativeBackendStatus()?.active)('native element-wise kernels', () => {
  it('are registered', () => {
    const names = nativeBackendStatus()?.nativeKernels ?? [];
    for (const k of ['Add', 'Sub', 'Multiply', 'RealDiv', 'Exp', 'Softmax', 'Transpose']) expect(names).toContain(k);
  });

  it('binary ops match the cpu kernels bit for bit on every broadcast layout, incl. fallbacks', () => {
    const pairs: [number[], number[]][] = [
      [
        [3, 5, 7],
        [3, 5, 7],
      ],
      [[3, 5, 7], []],
      [[], [3, 5, 7]],
      [[4, 9, 33], [33]],
      [[33], [4, 9, 33]],
      [
        [4, 9, 33],
        [4, 9, 1],
      ],
      [
        [4, 9, 1],
        [4, 9, 33],
      ],
      [
        [2, 3, 5, 7],
        [3, 1, 1],
      ],
      [[40, 64, 129], [129]],
      [
        [40, 64, 129],
        [40, 64, 1],
      ],
      [
        [300, 1001],
        [300, 1001],
      ],
      [
        [5, 1],
        [1, 7],
      ],
      [
        [2, 1, 4],
        [3, 1],
      ],
      [[0, 3], [3]],
    ];
    for (const [sa, sb] of pairs) {
      const a = randomTensor(sa);
      const b = tf.add(tf.abs(randomTensor(sb)), 0.5); // no division by ~0
      for (const [name, op] of ops)
        expect(
          compareBackends(() => op(a, b)),
          `${name} ${sa} ${sb}`,
        ).toBe(0);
      tf.dispose([a, b]);
    }
    const i = tf.tensor1d([1, 2, 3], 'int32');
    expect(Array.from(valuesOn(NATIVE, () => tf.add(i, tf.scalar(4, 'int32')))[0])).toEqual([5, 6, 7]);
    expect(Array.from(valuesOn(NATIVE, () => tf.mul(i, tf.tensor1d([1.5, 2, 3])))[0])).toEqual([1.5, 4, 9]);
    i.dispose();
  });

  it('exp and softmax match the cpu kernels to 1e-5 relative (odd, threaded and 4-D sizes)', () => {
    for (const shape of [[1], [1001], [300, 257], [7, 3, 5]]) {
      const x = tf.mul(randomTensor(shape), 20);
      expect(
        compareBackends(() => tf.exp(x)),
        `exp ${shape}`,
      ).toBeLessThanOrEqual(1e-5);
      x.dispose();
    }
    for (const shape of [[7], [3, 5, 11], [4, 4, 64, 64], [2, 1000], [1, 1]]) {
      const x = tf.mul(randomTensor(shape), 10);
      expect(
        compareBackends(() => tf.softmax(x)),
        `softmax ${shape}`,
      ).toBeLessThanOrEqual(1e-5);
      x.dispose();
    }
    const i = tf.tensor1d([0, 1, 2], 'int32');
    expect(compareBackends(() => tf.exp(i))).toBeLessThanOrEqual(1e-7);
    i.dispose();
  });

  it('transpose matches the cpu kernel exactly (2-D, attention perms, any perm, int32)', () => {
    const cases: [number[], number[]][] = [
      [
        [300, 517],
        [1, 0],
      ],
      [
        [5, 7],
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
    ];
    for (const [shape, perm] of cases) {
      const x = randomTensor(shape);
      expect(
        compareBackends(() => tf.transpose(x, perm)),
        `${shape} ${perm}`,
      ).toBe(0);
      x.dispose();
    }
    const ints = tf.tensor3d(
      Int32Array.from({ length: 24 }, (_, k) => k),
      [2, 3, 4],
      'int32',
    );
    expect(valuesOn(NATIVE, () => tf.transpose(ints, [2, 0, 1]))).toEqual(
      valuesOn('cpu', () => tf.transpose(ints, [2, 0, 1])),
    );
    ints.dispose();
  });

  it('gradients through attention-like compositions match the cpu backend', () => {
    const x = randomTensor([2, 6, 3, 8]);
    const w = randomTensor([8]);
    const scale = randomTensor([2, 3, 6, 1]);
    const err = compareBackends(() =>
      tf.grads((xt: tf.Tensor, wt: tf.Tensor, st: tf.Tensor) => {
        const q = tf.transpose(tf.mul(xt, wt), [0, 2, 1, 3]); // [2,3,6,8]
        const att = tf.softmax(tf.div(tf.matMul(q, q, false, true), tf.add(tf.abs(st), 1)));
        const y = tf.sub(tf.matMul(att, q), tf.exp(tf.mul(q, 0.1)));
        return tf.sum(tf.mul(y, y));
      })([x, w, scale]),
    );
    expect(err).toBeLessThanOrEqual(1e-5);
    tf.dispose([x, w, scale]);
  });
});
