/** Outcome of a native operation: [status, peer global rank or -1, message]. */
export type NativeResult = [status: number, peer: number, message: string];

/** A shared-memory group communicator (see native/src/shm_comm.h). */
export interface ShmCommNative {
  /** Members that have mapped the segment so far. */
  attached(): number;
  /** Blocks until all members mapped the segment, then unlinks its name. */
  waitAttachedAndUnlink(timeoutMs: number): NativeResult;
  unlink(): void;
  /** Queues an operation on a native thread; returns its id. */
  submit(
    kind: number,
    dtype: number,
    op: number,
    rootOrPeer: number,
    tag: number,
    a: ArrayBufferView | null,
    b: ArrayBufferView | null,
    count: number,
    timeoutMs: number,
  ): number;
  /** Blocks until operation `id` is done and returns its result (once per id). */
  wait(id: number): NativeResult;
  /** Keeps the event loop alive while operations are pending (the completion callback must arrive). */
  ref(): void;
  unref(): void;
  /** Stops the threads and unmaps the segment. */
  destroy(): void;
  mappedBytes(): number;
}

export interface ShmAddon {
  ShmComm: new (
    name: string,
    rank: number,
    globalRanks: number[],
    slotBytes: number,
    p2pBytes: number,
    onDone: (id: number) => void,
  ) => ShmCommNative;
  /** shm_open + mmap as an external (zero-copy) ArrayBuffer; unmapped when garbage-collected. */
  mapSegment(name: string, bytes: number, create: boolean): ArrayBuffer;
  unlinkSegment(name: string): boolean;
  /** dst = srcs[0] op srcs[1] op ... with the native kernels (dtype/op codes as in ShmComm). */
  reduce(dtype: number, op: number, dst: ArrayBufferView, srcs: ArrayBufferView[], divisor: number): void;
  /** The SIMD instruction set the reduction kernels use: avx512, avx2 or generic. */
  isa(): string;
}

/** The zeroflow_shm addon, or null when it is unavailable (see shmAddonUnavailableReason). */
export function loadShmAddon(): ShmAddon | null;
/** Why loadShmAddon() returned null; null when it loaded. */
export function shmAddonUnavailableReason(): string | null;
