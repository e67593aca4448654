import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { KernelsAddon } from '@zeroflow/native';
import { BufferPool } from './buffer-pool.js';

type DataId = object;
type StoredValues = Parameters<MathBackendCPU['write']>[0];

/**
 * The `zeroflow-cpu` backend: tfjs's cpu backend (same tensor storage, so every cpu kernel runs on it
 * unchanged) plus the native kernels addon that the overridden kernels call, and a pool that recycles the
 * native kernels' output buffers as soon as tfjs disposes their tensors (see buffer-pool.ts).
 */
export class NativeCpuBackend extends MathBackendCPU {
  /** Where native kernels get their fp32 outputs (`pool.take(n)`). */
  readonly pool = new BufferPool();

  constructor(readonly kernels: KernelsAddon) {
    super();
    // The cpu backend prints "install tfjs-node" on its first write; ZeroFlow brings its own native kernels.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  override write(values: StoredValues, shape: number[], dtype: Parameters<MathBackendCPU['write']>[2]): DataId {
    this.pool.stored(values);
    return super.write(values, shape, dtype);
  }

  override move(
    dataId: DataId,
    values: StoredValues,
    shape: number[],
    dtype: Parameters<MathBackendCPU['move']>[3],
    refCount: number,
  ): void {
    // a move over existing storage replaces it: release what was there
    if (this.data.has(dataId)) this.pool.released(this.data.get(dataId).values);
    this.pool.stored(values);
    super.move(dataId, values, shape, dtype, refCount);
  }

  override readSync(dataId: DataId): ReturnType<MathBackendCPU['readSync']> {
    const out = super.readSync(dataId);
    this.pool.escaped(this.data.get(dataId).values);
    return out;
  }

  /**
   * The float32 storage of a tensor lent for a synchronous read (core's engine hands gradients to their owner
   * this way): unlike `readSync` it does not mark the buffer as read out, so the pool keeps recycling it. The
   * caller must not keep it past the call. Undefined when the data is not a Float32Array of this backend.
   */
  [Symbol.for('zeroflow.borrowValues')](dataId: DataId): Float32Array | undefined {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    return values instanceof Float32Array ? values : undefined;
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const released = super.disposeData(dataId, force);
    if (values !== undefined && !this.data.has(dataId)) this.pool.released(values);
    return released;
  }
}

/** Gives a temporary from {@link outputBuffer} back at once (it never became a tensor's storage). */
export function recycleBuffer(backend: unknown, buffer: Float32Array): void {
  if (backend instanceof NativeCpuBackend) backend.pool.recycle(buffer);
}

/** An output like `like` (Float32Array: from the pool; Int32Array: fresh) of `length` elements. */
export function outputLike<T extends Float32Array | Int32Array>(backend: unknown, like: T, length: number): T {
  return (like instanceof Float32Array ? outputBuffer(backend, length) : new Int32Array(length)) as T;
}

/** The output buffer for a native kernel: from the active backend's pool when it is ours, else fresh. */
export function outputBuffer(backend: unknown, length: number, zeroed = false): Float32Array {
  return backend instanceof NativeCpuBackend ? backend.pool.take(length, zeroed) : new Float32Array(length);
}
