/** The run-copying Slice and SplitV kernels against the cpu kernels: every rank 1-4, dtypes, gradients. */
import { tf } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { nativeBackendStatus } from '../src/index.js';
import { compareBackends, NATIVE, randomTensor, valuesOn } from './helpers.js';

describe.skipIf(!nativeBackendStatus()?.active)('Slice and SplitV', () => {
  it('slices of every rank, contiguous or not, match the cpu kernel exactly', () => {
    const x = randomTensor([3, 5, 7, 9]);
    const cases: [number[], number[]][] = [
      [
        [0, 0, 0, 0],
        [3, 5, 7, 9],
      ],
      [
        [1, 0, 0, 0],
        [1, 5, 7, 9],
      ],
      [
        [0, 1, 2, 3],
        [3, 3, 4, 5],
      ],
      [
        [2, 4, 6, 8],
        [1, 1, 1, 1],
      ],
      [
        [0, 0, 0, 1],
        [-1, -1, -1, 7],
      ],
      [
        [1, 2, 0, 0],
        [2, 2, 7, 9],
      ],
    ];
    for (const [begin, size] of cases) {
      expect(
        compareBackends(() => tf.slice(x, begin, size)),
        `${begin} ${size}`,
      ).toBe(0);
    }
    const x2 = randomTensor([6, 10]);
    expect(compareBackends(() => tf.slice(x2, [1, 3], [4, 5]))).toBe(0);
    const x1 = randomTensor([10]);
    expect(compareBackends(() => tf.slice(x1, [3], [4]))).toBe(0);
    const ints = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32');
    expect(Array.from(valuesOn(NATIVE, () => tf.slice(ints, [0, 1], [2, 2]))[0])).toEqual([2, 3, 5, 6]);
    tf.dispose([x, x1, x2, ints]);
  });

  it('split along every axis (equal and sized pieces) and gradients through it', () => {
    const x = randomTensor([4, 6, 12]);
    for (const axis of [0, 1, 2, -1]) {
      expect(
        compareBackends(() => tf.split(x, 2, axis)),
        `axis ${axis}`,
      ).toBe(0);
    }
    expect(compareBackends(() => tf.split(x, [3, 5, 4], 2))).toBe(0);
    const w = randomTensor([4, 6, 4]);
    const err = compareBackends(() =>
      tf.grads((t: tf.Tensor) => {
        const [q, k, v] = tf.split(t, 3, 2);
        return tf.sum(tf.mul(tf.add(tf.mul(q, k), v), w));
      })([x]),
    );
    expect(err).toBeLessThanOrEqual(1e-6);
    tf.dispose([x, w]);
  });
});
