/**
 * Recycles the fp32 output buffers of native kernels.
 *
 * tfjs disposes intermediate tensors promptly, but the cpu backend's storage is plain typed arrays: a
 * disposed tensor's memory returns only when V8 collects it, long after. One GPT training step allocates
 * hundreds of MB of intermediates, so without recycling a rank's peak RSS is mostly garbage waiting for the
 * collector (measured: ~650 MB of a 920 MB peak on the peer's 4 M-parameter model). This pool hands native
 * kernels their outputs and takes them back when tfjs disposes the tensor, so steady-state training reuses
 * the same memory every step (which also saves the page faults of fresh allocations).
 *
 * A buffer is reused only when nothing else can still see it: it must have been handed out by this pool,
 * stored whole (not as a view: a cpu kernel such as Slice may return a subarray of its input) by exactly
 * the tensors that are now gone, and never read out of the backend (`dataSync`/`data` hand the storage
 * itself to the caller, who may keep it). Anything else is left to the garbage collector as before.
 */

/** Default cap on the bytes kept for reuse (ZEROFLOW_POOL_MB overrides; 0 disables the pool). */
const DEFAULT_MAX_POOLED_MB = 1024;

/** Counters for tests and reports. */
export interface BufferPoolStats {
  /** Buffers handed out that came from the free lists. */
  reused: number;
  /** Buffers handed out freshly allocated. */
  allocated: number;
  /** Bytes currently waiting in the free lists. */
  pooledBytes: number;
  /** Bytes handed out and not back in the free lists (in tensors, read out, or left to the collector). */
  outBytes: number;
  /** The most `outBytes` at once. */
  peakOutBytes: number;
}

/** Exact-size free lists of Float32Arrays with liveness tracking per underlying ArrayBuffer. */
export class BufferPool {
  private readonly free = new Map<number, Float32Array[]>();
  /** Buffers this pool handed out, to the array object that owns the whole buffer. */
  private readonly owned = new WeakMap<ArrayBufferLike, Float32Array>();
  /** Live tensor storages using each owned buffer. */
  private readonly users = new WeakMap<ArrayBufferLike, number>();
  /** Owned buffers that escaped (read out, or stored as a view): never reused. */
  private readonly tainted = new WeakSet<ArrayBufferLike>();
  private pooledBytes = 0;
  private outBytes = 0;
  private peakOutBytes = 0;
  private reused = 0;
  private allocated = 0;

  constructor(readonly maxPooledBytes: number = defaultMaxPooledBytes()) {}

  /** A Float32Array of `length` elements with unspecified contents (`zeroed` for a cleared one). */
  take(length: number, zeroed = false): Float32Array {
    const list = this.free.get(length);
    const recycled = list?.pop();
    if (recycled) {
      this.pooledBytes -= recycled.byteLength;
      this.reused++;
      this.countOut(recycled.byteLength);
      if (zeroed) recycled.fill(0);
      return recycled;
    }
    this.allocated++;
    const fresh = new Float32Array(length);
    this.countOut(fresh.byteLength);
    if (length > 0) this.owned.set(fresh.buffer, fresh);
    return fresh;
  }

  /** Call when tensor storage starts using `values` (backend write/move). */
  stored(values: unknown): void {
    const buf = ownedBuffer(values);
    if (!buf) return;
    const whole = this.owned.get(buf);
    if (!whole) return;
    if (values !== whole) this.tainted.add(buf); // a view into a pooled buffer: its lifetime is unknown
    this.users.set(buf, (this.users.get(buf) ?? 0) + 1);
  }

  /** Call when the storage of a disposed tensor held `values`. */
  released(values: unknown, unstored = false): void {
    const buf = ownedBuffer(values);
    if (!buf) return;
    const whole = this.owned.get(buf);
    if (!whole) return;
    const left = unstored ? 0 : (this.users.get(buf) ?? 1) - 1;
    this.users.set(buf, left);
    if (left > 0 || this.tainted.has(buf)) return;
    if (this.pooledBytes + whole.byteLength > this.maxPooledBytes) {
      this.outBytes -= whole.byteLength; // to the collector
      return;
    }
    let list = this.free.get(whole.length);
    if (!list) this.free.set(whole.length, (list = []));
    list.push(whole);
    this.pooledBytes += whole.byteLength;
    this.outBytes -= whole.byteLength;
  }

  private countOut(bytes: number): void {
    this.outBytes += bytes;
    if (this.outBytes > this.peakOutBytes) this.peakOutBytes = this.outBytes;
  }

  /** Returns a buffer from {@link take} that no tensor stored (a kernel's temporary) to the free lists. */
  recycle(buffer: Float32Array): void {
    if (this.owned.get(buffer.buffer) === buffer && !this.users.get(buffer.buffer)) this.released(buffer, true);
  }

  /** Call when `values` leaves the backend (readSync/read): the caller may keep it, so it is never reused. */
  escaped(values: unknown): void {
    const buf = ownedBuffer(values);
    if (buf && this.owned.has(buf)) this.tainted.add(buf);
  }

  /** Drops every pooled buffer (to the garbage collector). */
  clear(): void {
    this.free.clear();
    this.pooledBytes = 0;
  }

  get stats(): BufferPoolStats {
    const { reused, allocated, pooledBytes, outBytes, peakOutBytes } = this;
    return { reused, allocated, pooledBytes, outBytes, peakOutBytes };
  }
}

function ownedBuffer(values: unknown): ArrayBufferLike | null {
  return values instanceof Float32Array ? values.buffer : null;
}

function defaultMaxPooledBytes(): number {
  const mb = Number(process.env.ZEROFLOW_POOL_MB ?? DEFAULT_MAX_POOLED_MB);
  return Number.isFinite(mb) && mb >= 0 ? mb * 2 ** 20 : DEFAULT_MAX_POOLED_MB * 2 ** 20;
}
