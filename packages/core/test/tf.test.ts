import { describe, expect, it } from 'vitest';
import { tf } from '../src/index.js';

describe('tf', () => {
  it('has gradients and chained ops registered on the cpu backend', () => {
    const g = tf.grad((x: tf.Tensor) => tf.mul(x, x));
    expect(Array.from(g(tf.scalar(3)).dataSync())).toEqual([6]);
    expect(Array.from(tf.scalar(2).add(1).dataSync())).toEqual([3]);
    expect(tf.getBackend()).toBe('cpu');
  });
});
