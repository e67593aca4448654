/**
 * The output-buffer pool of the `zeroflow-cpu` backend: native kernel outputs are reused once their tensors
 * are disposed, and never while anything can still see them (a read-out array, a view, a second tensor).
 */
import { tf } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { BufferPool } from '../src/buffer-pool.js';
import { type NativeCpuBackend, nativeBackendStatus } from '../src/index.js';
import { NATIVE } from './helpers.js';

describe('BufferPool', () => {
  it('reuses a released buffer of the same size, and only then', () => {
    const pool = new BufferPool();
    const a = pool.take(100);
    pool.stored(a);
    expect(pool.take(100)).not.toBe(a); // still in use
    pool.released(a);
    expect(pool.take(99)).not.toBe(a); // exact sizes only
    expect(pool.take(100)).toBe(a);
    expect(pool.stats.reused).toBe(1);
  });

  it('never reuses a buffer that was read out, stored as a view, or is still stored twice', () => {
    const pool = new BufferPool();
    const read = pool.take(8);
    pool.stored(read);
    pool.escaped(read);
    pool.released(read);
    const viewed = pool.take(8);
    pool.stored(viewed);
    pool.stored(viewed.subarray(2, 4));
    pool.released(viewed);
    const twice = pool.take(8);
    pool.stored(twice);
    pool.stored(twice);
    pool.released(twice);
    const fresh = pool.take(8);
    expect([read, viewed, twice]).not.toContain(fresh);
    pool.released(twice);
    expect(pool.take(8)).toBe(twice);
  });

  it('keeps at most maxPooledBytes and ignores arrays it did not hand out', () => {
    const pool = new BufferPool(64);
    const [a, b] = [pool.take(16), pool.take(16)];
    pool.stored(a);
    pool.stored(b);
    pool.released(a);
    pool.released(b); // 128 bytes > 64: dropped
    pool.released(new Float32Array(16));
    expect(pool.stats.pooledBytes).toBe(64);
  });
});

describe.skipIf(!nativeBackendStatus()?.active)('the zeroflow-cpu backend with its pool', () => {
  const backend = () => tf.engine().findBackend(NATIVE) as NativeCpuBackend;

  it('recycles disposed kernel outputs without corrupting what is still visible', () => {
    tf.setBackend(NATIVE);
    const x = tf.tensor1d([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const before = backend().pool.stats.reused;
    tf.exp(x).dispose();
    const kept = tf.exp(x);
    expect(backend().pool.stats.reused).toBe(before + 1);
    const read = tf.neg(x);
    const readValues = read.dataSync();
    read.dispose();
    const view = tf.tidy(() => tf.slice(tf.square(x), [0], [4])); // cpu's contiguous slice: a view
    for (let i = 0; i < 5; i++) tf.tidy(() => tf.mul(x, tf.scalar(100 + i)));
    expect(Array.from(readValues)).toEqual([-1, -2, -3, -4, -5, -6, -7, -8, -9]);
    expect(Array.from(view.dataSync())).toEqual([1, 4, 9, 16]);
    expect(kept.dataSync()[0]).toBeCloseTo(Math.E, 5);
    tf.dispose([x, kept, view]);
  });

  it('lends storage for a synchronous read without retiring it from the pool (what the engine does with gradients)', () => {
    tf.setBackend(NATIVE);
    const x = tf.tensor1d([1, 2, 3, 4, 5, 6, 7]);
    const borrow = (t: tf.Tensor) =>
      (backend() as unknown as Record<symbol, (id: object) => Float32Array>)[Symbol.for('zeroflow.borrowValues')](
        t.dataId,
      );
    const lent = tf.exp(x);
    const values = borrow(lent);
    expect(values[0]).toBeCloseTo(Math.E, 5);
    lent.dispose();
    const next = tf.exp(x); // the same size: gets the lent buffer back
    expect(borrow(next)).toBe(values);
    const read = tf.neg(x);
    const readOut = read.dataSync(); // readSync retires the buffer: its holder may keep it
    read.dispose();
    const after = tf.neg(x);
    expect(borrow(after)).not.toBe(readOut);
    tf.dispose([x, next, after]);
  });

  it('trains without garbage: a repeated step reuses its buffers', () => {
    tf.setBackend(NATIVE);
    const w = tf.variable(tf.randomNormal([64, 64], 0, 0.1, 'float32', 1));
    const xs = tf.randomNormal([32, 64], 0, 1, 'float32', 2);
    const opt = tf.train.sgd(0.01);
    const step = () => opt.minimize(() => tf.sum(tf.square(tf.tanh(tf.matMul(xs, w)))), false);
    step();
    const { reused, allocated } = backend().pool.stats;
    const tensors = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) step();
    const after = backend().pool.stats;
    expect(after.reused - reused).toBeGreaterThan(20);
    expect(after.allocated - allocated).toBeLessThan(after.reused - reused);
    expect(tf.memory().numTensors).toBe(tensors);
    tf.dispose([w, xs]);
    opt.dispose();
  });
});
