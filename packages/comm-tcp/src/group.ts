/**
 * The ProcessGroup of the tcp backend (main thread). Each call checks its arguments, stages the buffer in
 * shared memory (or uses it directly when it already lives in a SharedArrayBuffer), hands the op to the
 * socket worker and returns the Work.
 */
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
import type { PendingWork, StagingPool, WorkerChannel } from './channel.js';
import { type OpDescriptor, REDUCE_OPS } from './wire.js';

/** 32-bit FNV-1a: group ids every member derives alike from the group's creation path. */
export function groupId(path: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < path.length; i++) {
    h ^= path.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

interface Staged {
  sab: SharedArrayBuffer;
  byteOffset: number;
  /** A view of the staging memory with the caller's element type. */
  view: CommBuffer;
  /** True when `sab` came from the pool (copy in/out and release it). */
  pooled: boolean;
}

function viewLike(buf: CommBuffer, sab: SharedArrayBuffer, byteOffset: number, length: number): CommBuffer {
  const Ctor = buf.constructor as new (b: SharedArrayBuffer, o: number, l: number) => CommBuffer;
  return new Ctor(sab, byteOffset, length);
}

/** Shared state of all groups of one process: the worker channel, staging pool, and defaults. */
export interface GroupShared {
  channel: WorkerChannel;
  pool: StagingPool;
  timeoutMs: number;
  worldSize: number;
}

export class TcpProcessGroup implements ProcessGroup {
  readonly backend = 'tcp';
  private seq = 0;
  private children = 0;
  private readonly p2pSeq = new Map<string, number>();
  private destroyed = false;
  readonly id: number;

  constructor(
    private readonly shared: GroupShared,
    private readonly path: string,
    readonly ranks: readonly number[],
    readonly rank: number,
  ) {
    this.id = groupId(path);
  }

  get size(): number {
    return this.ranks.length;
  }

  allReduce(buf: CommBuffer, op: ReduceOp = 'sum', opts?: CollectiveOptions): Work {
    const dtype = this.check(buf, opts, op);
    const st = this.stage(buf, buf.length, true);
    return this.submit(
      { kind: 'allReduce', dtype, redop: op, root: -1, count: buf.length },
      st,
      buf.length,
      -1,
      opts,
      (ok) => {
        if (ok && st.pooled) buf.set(st.view);
      },
    );
  }

  reduceScatter(output: CommBuffer, input: CommBuffer, op: ReduceOp = 'sum', opts?: CollectiveOptions): Work {
    const dtype = this.check(input, opts, op);
    this.sameType(output, input, 'reduceScatter');
    if (input.length !== output.length * this.size) {
      throw new CommError(
        `reduceScatter: input has ${input.length} elements; it must be size (${this.size}) x output (${output.length})`,
      );
    }
    // always staged: the ring reduces in place, and the caller's input must stay intact
    const st = this.stage(input, input.length, true, true);
    const n = output.length;
    return this.submit(
      { kind: 'reduceScatter', dtype, redop: op, root: -1, count: n },
      st,
      input.length,
      -1,
      opts,
      (ok) => {
        if (ok) output.set(st.view.subarray(this.rank * n, (this.rank + 1) * n));
      },
    );
  }

  allGather(output: CommBuffer, input: CommBuffer, opts?: CollectiveOptions): Work {
    const dtype = this.check(input, opts);
    this.sameType(output, input, 'allGather');
    if (output.length !== input.length * this.size) {
      throw new CommError(
        `allGather: output has ${output.length} elements; it must be size (${this.size}) x input (${input.length})`,
      );
    }
    const st = this.stage(output, output.length, false);
    const n = input.length;
    st.view.subarray(this.rank * n, (this.rank + 1) * n).set(input);
    return this.submit(
      { kind: 'allGather', dtype, redop: 'sum', root: -1, count: n },
      st,
      output.length,
      -1,
      opts,
      (ok) => {
        if (ok && st.pooled) output.set(st.view);
      },
    );
  }

  broadcast(buf: CommBuffer, root: number, opts?: CollectiveOptions): Work {
    const dtype = this.check(buf, opts);
    this.checkRank(root, 'broadcast root', true);
    const st = this.stage(buf, buf.length, root === this.rank);
    return this.submit(
      { kind: 'broadcast', dtype, redop: 'sum', root, count: buf.length },
      st,
      buf.length,
      -1,
      opts,
      (ok) => {
        if (ok && st.pooled && root !== this.rank) buf.set(st.view);
      },
    );
  }

  barrier(opts?: CollectiveOptions): Work {
    const empty = new Int32Array(0);
    const st = this.stage(empty, 0, false);
    return this.submit(
      { kind: 'barrier', dtype: 'int32', redop: 'sum', root: -1, count: 0 },
      st,
      0,
      -1,
      opts,
      () => {},
    );
  }

  send(buf: CommBuffer, dst: number, tag = 0, opts?: CollectiveOptions): Work {
    const dtype = this.check(buf, opts);
    this.checkRank(dst, 'send destination', false);
    this.checkTag(tag);
    const st = this.stage(buf, buf.length, true);
    const seq = this.nextP2p(`s${dst}:${tag}`);
    return this.submit(
      { kind: 'send', dtype, redop: 'sum', root: dst, count: buf.length },
      st,
      buf.length,
      tag,
      opts,
      () => {},
      seq,
    );
  }

  recv(buf: CommBuffer, src: number, tag = 0, opts?: CollectiveOptions): Work {
    const dtype = this.check(buf, opts);
    this.checkRank(src, 'recv source', false);
    this.checkTag(tag);
    const st = this.stage(buf, buf.length, false);
    const seq = this.nextP2p(`r${src}:${tag}`);
    return this.submit(
      { kind: 'recv', dtype, redop: 'sum', root: src, count: buf.length },
      st,
      buf.length,
      tag,
      opts,
      (ok) => {
        if (ok && st.pooled) buf.set(st.view);
      },
      seq,
    );
  }

  newGroup(ranks: number[]): ProcessGroup | null {
    this.alive();
    if (!Array.isArray(ranks) || ranks.length === 0)
      throw new CommError('newGroup needs a non-empty list of group ranks');
    const seen = new Set<number>();
    for (const r of ranks) {
      if (!Number.isInteger(r) || r < 0 || r >= this.size)
        throw new CommError(`newGroup: rank ${r} is not a rank of this group (size ${this.size})`);
      if (seen.has(r)) throw new CommError(`newGroup: rank ${r} is listed twice`);
      seen.add(r);
    }
    // every member counts the call, so the k-th sub-group gets the same id on all of them
    const path = `${this.path}/${this.children++}:${ranks.join(',')}`;
    const me = ranks.indexOf(this.rank);
    if (me < 0) return null;
    return new TcpProcessGroup(
      this.shared,
      path,
      ranks.map((r) => this.ranks[r]),
      me,
    );
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.path === 'world') this.shared.channel.shutdown(2000);
  }

  private submit(
    desc: OpDescriptor,
    st: Staged,
    length: number,
    tag: number,
    opts: CollectiveOptions | undefined,
    copyOut: (ok: boolean) => void,
    p2pSeq?: number,
  ): PendingWork {
    const timeoutMs = opts?.timeoutMs ?? this.shared.timeoutMs;
    if (!(timeoutMs > 0)) throw new CommError(`timeoutMs must be > 0, got ${timeoutMs}`);
    const seq = p2pSeq ?? this.seq++;
    const { pool } = this.shared;
    return this.shared.channel.submit(
      {
        ...desc,
        group: this.id,
        ranks: [...this.ranks],
        seq,
        tag,
        sab: st.sab,
        byteOffset: st.byteOffset,
        length,
        timeoutMs,
      },
      (ok) => {
        copyOut(ok);
        // a failed op's staging may still be referenced by writes in flight: let it go to the GC instead
        if (ok && st.pooled) pool.release(st.sab);
      },
    );
  }

  private stage(buf: CommBuffer, length: number, copyIn: boolean, forceCopy = false): Staged {
    if (!forceCopy && buf.buffer instanceof SharedArrayBuffer) {
      return { sab: buf.buffer, byteOffset: buf.byteOffset, view: buf, pooled: false };
    }
    const sab = this.shared.pool.acquire(length * buf.BYTES_PER_ELEMENT);
    const view = viewLike(buf, sab, 0, length);
    if (copyIn) view.set(buf.subarray(0, length));
    return { sab, byteOffset: 0, view, pooled: true };
  }

  private check(buf: CommBuffer, opts: CollectiveOptions | undefined, op?: ReduceOp): CommDtype {
    this.alive();
    if (!(buf instanceof Float32Array || buf instanceof Int32Array || buf instanceof Uint16Array)) {
      throw new CommError('comm buffers must be Float32Array, Int32Array or Uint16Array (fp16/bf16)');
    }
    if (op !== undefined && !REDUCE_OPS.includes(op))
      throw new CommError(`unknown reduce op "${op}" (sum, avg, max, min)`);
    return commDtypeOf(buf, opts);
  }

  private sameType(a: CommBuffer, b: CommBuffer, what: string): void {
    if (a.constructor !== b.constructor) throw new CommError(`${what}: input and output must be the same array type`);
  }

  private checkRank(r: number, what: string, selfOk: boolean): void {
    if (!Number.isInteger(r) || r < 0 || r >= this.size)
      throw new CommError(`${what} ${r} is not a rank of this group (size ${this.size})`);
    if (!selfOk && r === this.rank) throw new CommError(`${what} ${r} is this rank itself`);
  }

  private checkTag(tag: number): void {
    if (!Number.isInteger(tag) || tag < 0 || tag > 0x7fffffff)
      throw new CommError(`tag must be an integer >= 0, got ${tag}`);
  }

  private nextP2p(key: string): number {
    const s = this.p2pSeq.get(key) ?? 0;
    this.p2pSeq.set(key, s + 1);
    return s;
  }

  private alive(): void {
    if (this.destroyed) throw new CommError('this process group was destroyed');
  }
}
