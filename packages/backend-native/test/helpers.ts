import { tf } from '@zeroflow/core';

export const NATIVE = 'zeroflow-cpu';

/** Runs fn with `backend` active (tensors move between backends on use), returns its outputs' values. */
export function valuesOn(backend: string, fn: () => tf.Tensor | tf.Tensor[]): Float32Array[] {
  const previous = tf.getBackend();
  tf.setBackend(backend);
  try {
    return tf.tidy(() => {
      const out = fn();
      return (Array.isArray(out) ? out : [out]).map((t) => Float32Array.from(t.dataSync() as Float32Array));
    });
  } finally {
    tf.setBackend(previous);
  }
}

/** Max over elements of |a - b| / max(1, |b|): relative for large values, absolute near zero. */
export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new RangeError(`length ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i] - b[i]) / Math.max(1, Math.abs(b[i]));
    if (!(err <= worst)) worst = Number.isNaN(err) ? Number.POSITIVE_INFINITY : err;
  }
  return worst;
}

let seed = 7;
/** Deterministic uniform values in [-1, 1) of the given shape. */
export function randomTensor(shape: number[]): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const values = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    values[i] = (seed / 2 ** 32) * 2 - 1;
  }
  return tf.tensor(values, shape, 'float32');
}

/** Native and cpu results of fn agree to `tol` (relative) on every output; returns the worst error. */
export function compareBackends(fn: () => tf.Tensor | tf.Tensor[]): number {
  const native = valuesOn(NATIVE, fn);
  const cpu = valuesOn('cpu', fn);
  let worst = 0;
  native.forEach((v, i) => {
    worst = Math.max(worst, maxRelErr(v, cpu[i]));
  });
  return worst;
}
