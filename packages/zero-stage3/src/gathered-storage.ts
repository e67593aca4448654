/**
 * Recycles the fp32 arrays behind gathered weight tensors. Every leaf gathers its weights twice a step
 * (forward and backward) into full-size arrays that live only while the leaf runs; allocating them fresh
 * made V8 zero and page-fault a model's worth of memory twice per step and left it to the collector (on
 * GPT `small` at 2 ranks, the largest part of stage 3's cost over stage 2). Arrays come back here when their
 * tensor is released and go to the next gather of the same size, which with repeated transformer blocks is
 * almost every one.
 *
 * An array is reused only when nothing can still see it: no other tensor of its data is alive (a reshape or
 * clone of the weight that outlived the leaf keeps it out of the pool) and the caller does not keep its
 * values (reuse distance keeps gathered values for a later gather).
 */
import { tf } from '@zeroflow/core';

/** Most bytes kept waiting for reuse (a few layers' weights in practice: releases and gathers alternate). */
const MAX_POOLED_BYTES = 512 * 2 ** 20;

export class GatheredStorage {
  private readonly free = new Map<number, Float32Array[]>();
  private readonly backing = new Map<tf.Tensor, Float32Array>();
  private readonly users = new Map<Float32Array, number>();
  private pooledBytes = 0;

  /** A Float32Array of `length` elements with unspecified contents. */
  take(length: number): Float32Array {
    const recycled = this.free.get(length)?.pop();
    if (!recycled) return new Float32Array(length);
    this.pooledBytes -= recycled.byteLength;
    return recycled;
  }

  /** A tensor over `values` (no copy), whose storage may be recycled when it is disposed through {@link dispose}. */
  tensor(values: Float32Array, shape: number[]): tf.Tensor {
    const w = tf.tensor(values, shape, 'float32');
    this.backing.set(w, values);
    this.users.set(values, (this.users.get(values) ?? 0) + 1);
    return w;
  }

  /** Disposes a tensor; its array returns to the pool unless kept by the caller or seen by another tensor. */
  dispose(w: tf.Tensor, keepValues: boolean): void {
    const values = this.backing.get(w);
    const backend = tf.engine().backend as unknown as { refCount?(dataId: object): number };
    const shared = (backend.refCount?.(w.dataId) ?? 2) > 1;
    w.dispose();
    if (!values) return;
    this.backing.delete(w);
    const left = (this.users.get(values) ?? 1) - 1;
    if (left > 0) {
      this.users.set(values, left);
      return;
    }
    this.users.delete(values);
    if (!keepValues && !shared) this.give(values);
  }

  /** Takes back an array nothing uses any more. */
  give(values: Float32Array): void {
    if (this.pooledBytes + values.byteLength > MAX_POOLED_BYTES) return;
    const list = this.free.get(values.length);
    if (list) list.push(values);
    else this.free.set(values.length, [values]);
    this.pooledBytes += values.byteLength;
  }

  /** Bytes waiting for reuse. */
  get bytes(): number {
    return this.pooledBytes;
  }
}
