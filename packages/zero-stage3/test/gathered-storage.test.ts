/**
 * The recycling of gathered weights' arrays (src/gathered-storage.ts): an array goes back to the pool only
 * when its last tensor is disposed, nothing else shares its data, and its values are not kept.
 */
import { tf } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { GatheredStorage } from '../src/gathered-storage.js';

describe('GatheredStorage', () => {
  it('hands a released array to the next gather of the same size', () => {
    const s = new GatheredStorage();
    const a = s.take(6);
    a.set([1, 2, 3, 4, 5, 6]);
    const w = s.tensor(a, [2, 3]);
    expect(Array.from(w.dataSync())).toEqual([1, 2, 3, 4, 5, 6]); // no copy: the tensor reads the array
    s.dispose(w, false);
    expect(w.isDisposed).toBe(true);
    expect(s.bytes).toBe(24);
    expect(s.take(5)).not.toBe(a); // exact sizes only
    expect(s.take(6)).toBe(a);
    expect(s.bytes).toBe(0);
  });

  it('keeps an array out of the pool while another tensor shares its data, or its values are kept', () => {
    const s = new GatheredStorage();
    const a = s.take(4);
    const w = s.tensor(a, [4]);
    const view = tf.reshape(w, [2, 2]); // outlives the weight: a user's leaf may return such a view
    s.dispose(w, false);
    expect(s.bytes).toBe(0);
    expect(Array.from(view.dataSync())).toHaveLength(4);
    view.dispose();

    const b = s.take(4);
    s.dispose(s.tensor(b, [4]), true); // reuse distance keeps the gathered values for a later gather
    expect(s.bytes).toBe(0);
  });

  it('recycles an array used by two tensors only after both are gone', () => {
    const s = new GatheredStorage();
    const a = s.take(3);
    const [w1, w2] = [s.tensor(a, [3]), s.tensor(a, [3])];
    s.dispose(w1, false);
    expect(s.bytes).toBe(0);
    s.dispose(w2, false);
    expect(s.bytes).toBe(12);
  });
});
