import {
  type CollectiveOptions,
  type CommBuffer,
  type CommDtype,
  CommError,
  commDtypeOf,
  type ProcessGroup,
  type ReduceOp,
  type Work,
} from '@zeroflow/core';
import type { ShmAddon, ShmCommNative } from '@zeroflow/native';
import { DTYPE_CODE, errorFromNative, KIND, type NativeResult, OP_CODE } from './codes.js';
import { ShmWork, type WorkOwner } from './work.js';

/** Sizes of a group's shared-memory staging areas. */
export interface ShmBufferSizes {
  /** Bytes of each of a rank's two collective slot halves (default 4 MiB, env ZEROFLOW_SHM_SLOT_BYTES). */
  slotBytes: number;
  /** Bytes of each of a channel's two send/recv halves (default 1 MiB, env ZEROFLOW_SHM_P2P_BYTES). */
  p2pBytes: number;
}

/** Sizes from the environment, else the defaults. */
export function shmBufferSizesFromEnv(env: NodeJS.ProcessEnv = process.env): ShmBufferSizes {
  const read = (name: string, dflt: number): number => {
    const v = env[name];
    if (v === undefined || v === '') return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 65536) throw new CommError(`${name}="${v}" must be an integer >= 65536 (bytes)`);
    return n;
  };
  return { slotBytes: read('ZEROFLOW_SHM_SLOT_BYTES', 4 << 20), p2pBytes: read('ZEROFLOW_SHM_P2P_BYTES', 1 << 20) };
}

/** Everything needed to open one group's segment. */
export interface ShmGroupSpec {
  addon: ShmAddon;
  /** POSIX shm name, `/zf-...`; job-unique. */
  segment: string;
  rank: number;
  /** Global ranks of the members, in group-rank order. */
  ranks: readonly number[];
  timeoutMs: number;
  sizes: ShmBufferSizes;
}

/**
 * A ProcessGroup over one shared-memory segment (all members on this host). Collectives run in order on a
 * native thread; sends and recvs on a thread per peer. Buffers are used in place and must not be touched
 * until the returned Work completes.
 */
export class ShmProcessGroup implements ProcessGroup, WorkOwner {
  readonly backend = 'shm';
  readonly rank: number;
  readonly size: number;
  readonly ranks: readonly number[];
  readonly label: string;
  private readonly native: ShmCommNative;
  private readonly pending = new Map<number, ShmWork>();
  private subGroups = 0;
  private destroyed = false;

  /** Maps this rank into `spec.segment` (creating it if first). Call {@link finishAttach} once all did. */
  constructor(private readonly spec: ShmGroupSpec) {
    this.rank = spec.rank;
    this.size = spec.ranks.length;
    this.ranks = [...spec.ranks];
    this.label = `shm group [${this.ranks.join(',')}] (rank ${this.ranks[this.rank]})`;
    try {
      this.native = new spec.addon.ShmComm(
        spec.segment,
        spec.rank,
        [...spec.ranks],
        spec.sizes.slotBytes,
        spec.sizes.p2pBytes,
        (id) => this.onNativeDone(id),
      );
    } catch (e) {
      throw new CommError(`${this.label}: cannot map shared memory: ${(e as Error).message}`);
    }
  }

  /** Blocks until every member mapped the segment, then removes its name so a crash leaves nothing behind. */
  finishAttach(timeoutMs = this.spec.timeoutMs): void {
    const err = errorFromNative(this.native.waitAttachedAndUnlink(timeoutMs) as NativeResult, this.label);
    if (err) {
      this.destroy();
      throw err;
    }
  }

  allReduce(buf: CommBuffer, op: ReduceOp = 'sum', opts?: CollectiveOptions): Work {
    const dtype = commDtypeOf(buf, opts);
    return this.submit(KIND.allReduce, dtype, op, 0, 0, buf, null, buf.length, opts);
  }

  reduceScatter(output: CommBuffer, input: CommBuffer, op: ReduceOp = 'sum', opts?: CollectiveOptions): Work {
    const dtype = commDtypeOf(input, opts);
    this.sameType(output, input, 'reduceScatter');
    if (input.length !== output.length * this.size) {
      throw new CommError(
        `${this.label}: reduceScatter input length ${input.length} must be ${this.size} x output length ${output.length}`,
      );
    }
    return this.submit(KIND.reduceScatter, dtype, op, 0, 0, output, input, output.length, opts);
  }

  allGather(output: CommBuffer, input: CommBuffer, opts?: CollectiveOptions): Work {
    const dtype = commDtypeOf(input, opts);
    this.sameType(output, input, 'allGather');
    if (output.length !== input.length * this.size) {
      throw new CommError(
        `${this.label}: allGather output length ${output.length} must be ${this.size} x input length ${input.length}`,
      );
    }
    return this.submit(KIND.allGather, dtype, 'sum', 0, 0, input, output, input.length, opts);
  }

  broadcast(buf: CommBuffer, root: number, opts?: CollectiveOptions): Work {
    this.checkRank(root, 'broadcast root');
    return this.submit(KIND.broadcast, commDtypeOf(buf, opts), 'sum', root, 0, buf, null, buf.length, opts);
  }

  barrier(opts?: CollectiveOptions): Work {
    return this.submit(KIND.barrier, 'float32', 'sum', 0, 0, null, null, 0, opts);
  }

  send(buf: CommBuffer, dst: number, tag = 0, opts?: CollectiveOptions): Work {
    this.checkPeer(dst, 'send destination');
    return this.submit(KIND.send, commDtypeOf(buf, opts), 'sum', dst, tag, buf, null, buf.length, opts);
  }

  recv(buf: CommBuffer, src: number, tag = 0, opts?: CollectiveOptions): Work {
    this.checkPeer(src, 'recv source');
    return this.submit(KIND.recv, commDtypeOf(buf, opts), 'sum', src, tag, buf, null, buf.length, opts);
  }

  newGroup(ranks: number[]): ProcessGroup | null {
    this.assertAlive();
    const sorted = [...ranks];
    for (const r of sorted) this.checkRank(r, 'newGroup member');
    if (new Set(sorted).size !== sorted.length || sorted.length === 0) {
      throw new CommError(`${this.label}: newGroup needs distinct group ranks, got [${ranks.join(',')}]`);
    }
    // Every member calls newGroup in the same order, so the counter names the same segment on every rank.
    const index = ++this.subGroups;
    const myIndex = sorted.indexOf(this.rank);
    if (myIndex < 0) return null;
    const group = new ShmProcessGroup({
      ...this.spec,
      segment: `${this.spec.segment}.${index}`,
      rank: myIndex,
      ranks: sorted.map((r) => this.ranks[r]),
    });
    group.finishAttach();
    return group;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.native.destroy();
    // Whatever was pending was failed by the native side; settle it so waiters see why.
    for (const w of this.pending.values()) w.complete();
    this.pending.clear();
  }

  /** Blocks until the native op finishes (WorkOwner). */
  collect(id: number): NativeResult {
    if (this.destroyed) return [5, -1, 'the process group was destroyed'];
    return this.native.wait(id) as NativeResult;
  }

  private onNativeDone(id: number): void {
    const w = this.pending.get(id);
    if (!w) return;
    this.pending.delete(id);
    w.complete();
    if (this.pending.size === 0 && !this.destroyed) this.native.unref();
  }

  private submit(
    kind: number,
    dtype: CommDtype,
    op: ReduceOp,
    rootOrPeer: number,
    tag: number,
    a: CommBuffer | null,
    b: CommBuffer | null,
    count: number,
    opts: CollectiveOptions | undefined,
  ): Work {
    this.assertAlive();
    const opCode = OP_CODE[op];
    if (opCode === undefined) throw new CommError(`${this.label}: unknown reduce op "${op}"`);
    if (!Number.isInteger(tag) || tag < 0 || tag > 0x7fffffff)
      throw new CommError(`${this.label}: tag must be a 31-bit integer`);
    const timeoutMs = opts?.timeoutMs ?? this.spec.timeoutMs;
    const id = this.native.submit(kind, DTYPE_CODE[dtype], opCode, rootOrPeer, tag, a, b, count, timeoutMs);
    const work = new ShmWork(this, id, [a, b]);
    // The completion callback must be able to arrive: hold the event loop while anything is pending.
    if (this.pending.size === 0) this.native.ref();
    this.pending.set(id, work);
    return work;
  }

  private sameType(a: CommBuffer, b: CommBuffer, what: string): void {
    if (a.constructor !== b.constructor) {
      throw new CommError(`${this.label}: ${what} input and output must have the same array type`);
    }
  }

  private checkRank(r: number, what: string): void {
    if (!Number.isInteger(r) || r < 0 || r >= this.size) {
      throw new CommError(`${this.label}: ${what} ${r} is not a rank of this group (size ${this.size})`);
    }
  }

  private checkPeer(r: number, what: string): void {
    this.checkRank(r, what);
    if (r === this.rank) throw new CommError(`${this.label}: ${what} is this rank itself`);
  }

  private assertAlive(): void {
    if (this.destroyed) throw new CommError(`${this.label}: the process group was destroyed`);
  }
}
