/**
 * The collective-communication interface, after torch.distributed (DESIGN.md section 5). Backends
 * (`@zeroflow/comm-shm`, `@zeroflow/comm-tcp`, ...) implement it; core and plugins use only this file.
 *
 * tfjs backward is synchronous (DESIGN.md 4), so every operation returns a `Work` whose `wait()` blocks the
 * calling thread until completion (usable inside a tfjs gradient function); `promise` serves async callers.
 * Buffers are reduced/filled IN PLACE and must not be touched until the work completes.
 */
import { ZeroFlowError } from '../errors.js';

/** Element types on the wire. 16-bit floats travel as Uint16Array bit patterns. */
export type CommDtype = 'float32' | 'float16' | 'bfloat16' | 'int32';
/** Buffers a collective accepts. */
export type CommBuffer = Float32Array | Uint16Array | Int32Array;
/** Reductions. `avg` divides the sum by the group size (integer division truncates for int32). */
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

/** Options common to collectives. */
export interface CollectiveOptions {
  /** Required for Uint16Array buffers (`float16` or `bfloat16`); inferred for the others. */
  dtype?: CommDtype;
  /** Overrides the group's timeout for this call, in milliseconds. */
  timeoutMs?: number;
}

/** A pending operation. */
export interface Work {
  /** Blocks until done; throws CommError/CommTimeoutError/CommMismatchError on failure. */
  wait(): void;
  /** Resolves when done; rejects like `wait`. */
  readonly promise: Promise<void>;
  isCompleted(): boolean;
}

/**
 * A group of ranks that run collectives together. All members must issue the same collectives in the same
 * order with the same element count and dtype; a mismatch is a CommMismatchError on every rank. Reductions
 * run in a fixed order, so the same inputs give bit-identical results run after run.
 */
export interface ProcessGroup {
  /** This process's rank within the group. */
  readonly rank: number;
  readonly size: number;
  /** Global ranks of the members, in group-rank order. */
  readonly ranks: readonly number[];
  /** Backend name, e.g. `shm` or `tcp`. */
  readonly backend: string;
  /** Reduces `buf` over the group in place. */
  allReduce(buf: CommBuffer, op?: ReduceOp, opts?: CollectiveOptions): Work;
  /**
   * `input` holds `size` equal blocks; group rank r receives the reduction of every rank's block r in
   * `output` (length input.length / size).
   */
  reduceScatter(output: CommBuffer, input: CommBuffer, op?: ReduceOp, opts?: CollectiveOptions): Work;
  /** `output` (length size * input.length) receives every rank's `input`, in group-rank order. */
  allGather(output: CommBuffer, input: CommBuffer, opts?: CollectiveOptions): Work;
  /** Copies `buf` of group rank `root` into `buf` of every rank. */
  broadcast(buf: CommBuffer, root: number, opts?: CollectiveOptions): Work;
  barrier(opts?: CollectiveOptions): Work;
  /** Point to point, to/from a group rank; `tag` separates streams between the same pair. */
  send(buf: CommBuffer, dst: number, tag?: number, opts?: CollectiveOptions): Work;
  recv(buf: CommBuffer, src: number, tag?: number, opts?: CollectiveOptions): Work;
  /**
   * A sub-group of the given group ranks (for data/tensor/pipeline axes). Every member of this group must
   * call it, with the same list, in the same order; non-members get null.
   */
  newGroup(ranks: number[]): ProcessGroup | null;
  /** Releases sockets, segments and threads. */
  destroy(): void;
}

/** A communication failure. */
export class CommError extends ZeroFlowError {}

/** A peer did not answer within the timeout (it died, hung, or is much slower). Names the rank. */
export class CommTimeoutError extends CommError {
  constructor(
    message: string,
    readonly peerRank?: number,
  ) {
    super(message);
  }
}

/** Ranks issued different collectives (kind, sequence number, element count or dtype). */
export class CommMismatchError extends CommError {}

/** The dtype of a buffer, from its type or the options; Uint16Array needs an explicit 16-bit float dtype. */
export function commDtypeOf(buf: CommBuffer, opts?: CollectiveOptions): CommDtype {
  if (buf instanceof Float32Array) {
    if (opts?.dtype && opts.dtype !== 'float32') throw new CommError(`dtype ${opts.dtype} given for a Float32Array`);
    return 'float32';
  }
  if (buf instanceof Int32Array) {
    if (opts?.dtype && opts.dtype !== 'int32') throw new CommError(`dtype ${opts.dtype} given for an Int32Array`);
    return 'int32';
  }
  if (opts?.dtype === 'float16' || opts?.dtype === 'bfloat16') return opts.dtype;
  throw new CommError('a Uint16Array buffer needs opts.dtype "float16" or "bfloat16"');
}

/**
 * The rendezvous key-value store (like PyTorch's TCPStore: same operations and env contract, our own
 * framing, and a job token every client must present). Every call has a timeout.
 */
export interface Store {
  set(key: string, value: Uint8Array | string): Promise<void>;
  /** Waits (up to the timeout) for the key to exist, then returns its value. */
  get(key: string, timeoutMs?: number): Promise<Uint8Array>;
  /** Atomically adds `delta` to an integer counter (created at 0) and returns the new value. */
  add(key: string, delta: number): Promise<number>;
  /** Sets `key` to `desired` if its current value equals `expected` (absent = empty); returns the value now stored. */
  compareSet(key: string, expected: Uint8Array | string, desired: Uint8Array | string): Promise<Uint8Array>;
  /** Waits until all keys exist. */
  wait(keys: string[], timeoutMs?: number): Promise<void>;
  delete(key: string): Promise<boolean>;
  close(): void;
}

/** What a backend needs to form the world group. */
export interface BackendInit {
  rank: number;
  worldSize: number;
  localRank: number;
  localWorldSize: number;
  store: Store;
  /** Default timeout of every collective, ms (config `comm_timeout_ms`, env ZEROFLOW_COMM_TIMEOUT_MS, default 10 min). */
  timeoutMs: number;
  /** The job token (ZEROFLOW_JOB_TOKEN) every connection must present. */
  token: string;
}

/** A collective backend: creates the world ProcessGroup. */
export interface CommBackend {
  readonly name: string;
  /** Whether this backend can run here (native addon built, all ranks on one host, ...), and why not. */
  available(): { ok: boolean; reason?: string };
  createWorldGroup(init: BackendInit): Promise<ProcessGroup>;
}
