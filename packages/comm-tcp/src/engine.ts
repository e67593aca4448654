/**
 * The worker-side engine: runs operations on the mesh, matches incoming frames to the operations waiting
 * for them (or keeps them aside when a peer runs ahead), checks every frame's descriptor against this rank's
 * own call, enforces timeouts, and turns lost peers and mismatches into errors on every rank (a failing rank
 * tells the group with an Abort frame, and the group stays broken afterwards).
 */
import { type RingIO, recvMessage, ringAllGather, ringBroadcast, ringReduce, sendMessage } from './algorithms.js';
import type { FrameSink, Mesh } from './mesh.js';
import { divideInPlace, type Reducer, reducerFor } from './reduce.js';
import {
  bytesPerElement,
  describeOp,
  type ErrorKind,
  errorKindCode,
  errorKindFrom,
  type FrameHeader,
  FrameType,
  type OpDescriptor,
  type OpRequest,
  type OpResult,
} from './wire.js';

interface Expectation {
  dest: Uint8Array;
  reduce?: Reducer;
  peer: number;
  resolve: () => void;
}

/** Frames of one operation (collective: group + seq; point to point: group + tag + source + seq). */
class Mailbox {
  op: ActiveOp | undefined;
  readonly expected = new Map<string, Expectation>();
  readonly early = new Map<string, { h: FrameHeader; peer: number; data: Uint8Array }>();
}

interface ActiveOp {
  req: OpRequest;
  key: string;
  mailbox: Mailbox;
  finished: boolean;
  timer: NodeJS.Timeout;
  /** Peers we are writing to, with the number of writes in flight. */
  writing: Map<number, number>;
}

interface Failure {
  kind: ErrorKind;
  message: string;
  peer?: number;
}

class OpFailed extends Error {}

function mailboxKey(group: number, tag: number, src: number, seq: number): string {
  return tag < 0 ? `c${group}:${seq}` : `p${group}:${tag}:${src}:${seq}`;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

export class Engine implements FrameSink {
  mesh!: Mesh;
  private readonly mailboxes = new Map<string, Mailbox>();
  private readonly active = new Set<ActiveOp>();
  private readonly broken = new Map<number, Failure>();
  private readonly lost = new Map<number, { clean: boolean; reason: string }>();
  private readonly scratch = new Map<number, Uint8Array>();
  private discard = new Uint8Array(1 << 16);

  constructor(
    readonly rank: number,
    private readonly segmentBytes: number,
    private readonly report: (r: OpResult, slot: number) => void,
  ) {}

  /** Starts one operation; reports its outcome through `report`. */
  run(req: OpRequest): void {
    const key = mailboxKey(req.group, req.tag, req.kind === 'recv' ? req.ranks[req.root] : -1, req.seq);
    const broken = this.broken.get(req.group);
    const op: ActiveOp = {
      req,
      key,
      mailbox: broken ? new Mailbox() : this.mailbox(key),
      finished: false,
      writing: new Map(),
      timer: setTimeout(() => this.onTimeout(op), req.timeoutMs),
    };
    this.active.add(op);
    if (broken) {
      this.finish(op, { ...broken, message: `${broken.message} (the group is unusable after that failure)` }, false);
      return;
    }
    op.mailbox.op = op;
    for (const { h, peer } of op.mailbox.early.values()) {
      const problem = this.checkDescriptor(op, h, peer);
      if (problem) {
        this.finish(op, problem, true);
        return;
      }
    }
    this.execute(op).then(
      () => this.finish(op, undefined, false),
      (err) => {
        if (!(err instanceof OpFailed))
          this.finish(op, { kind: 'comm', message: `internal error: ${(err as Error).stack}` }, true);
      },
    );
  }

  private execute(op: ActiveOp): Promise<void> {
    const { req } = op;
    const eb = bytesPerElement(req.dtype);
    const data = new Uint8Array(req.sab, req.byteOffset, req.length * eb);
    const io = this.io(op);
    switch (req.kind) {
      case 'allReduce':
      case 'reduceScatter': {
        const finish = req.redop === 'avg' ? (v: Uint8Array) => divideInPlace(req.dtype, v, io.n) : () => {};
        return ringReduce(io, data, eb, reducerFor(req.dtype, req.redop), finish, req.kind === 'allReduce');
      }
      case 'barrier':
        return ringReduce(io, data.subarray(0, 0), 4, reducerFor('int32', 'sum'), () => {}, true);
      case 'allGather':
        return ringAllGather(io, data, eb);
      case 'broadcast':
        return ringBroadcast(io, data, req.root);
      case 'send':
        return sendMessage(io, req.root, data);
      case 'recv':
        return recvMessage(io, req.root, data);
    }
  }

  /** The RingIO of one op: group ranks mapped to global ranks, every frame stamped with the op's descriptor. */
  private io(op: ActiveOp): RingIO {
    const { req } = op;
    return {
      n: req.ranks.length,
      me: req.ranks.indexOf(this.rank),
      segmentBytes: this.segmentBytes,
      recv: (from, step, dest, reduce) => this.expect(op, req.ranks[from], step, dest, reduce),
      send: (to, step, payload) => this.transmit(op, req.ranks[to], step, payload),
    };
  }

  private expect(op: ActiveOp, peer: number, step: number, dest: Uint8Array, reduce?: Reducer): Promise<void> {
    if (op.finished) return Promise.reject(new OpFailed());
    const ek = `${peer}:${step}`;
    const early = op.mailbox.early.get(ek);
    if (early) {
      op.mailbox.early.delete(ek);
      const problem = this.checkSize(op, early.h, peer, dest);
      if (problem) {
        this.finish(op, problem, true);
        return Promise.reject(new OpFailed());
      }
      if (reduce) reduce(dest, early.data);
      else dest.set(early.data);
      return Promise.resolve();
    }
    const gone = this.lost.get(peer);
    if (gone) {
      this.finish(op, this.lostFailure(op, peer, gone.reason), true);
      return Promise.reject(new OpFailed());
    }
    return new Promise((resolve) => op.mailbox.expected.set(ek, { dest, reduce, peer, resolve }));
  }

  private transmit(op: ActiveOp, peer: number, step: number, payload: Uint8Array): Promise<void> {
    if (op.finished) return Promise.reject(new OpFailed());
    const { req } = op;
    op.writing.set(peer, (op.writing.get(peer) ?? 0) + 1);
    const header: FrameHeader = {
      type: FrameType.Data,
      group: req.group,
      seq: req.seq,
      tag: req.tag,
      step,
      kind: req.kind,
      dtype: req.dtype,
      redop: req.redop,
      root: req.root,
      count: req.count,
      payloadBytes: payload.byteLength,
      aux: 0,
    };
    return this.mesh.send(peer, header, payload).then(
      () => {
        op.writing.set(peer, op.writing.get(peer)! - 1);
      },
      () => {
        this.finish(op, this.lostFailure(op, peer, 'connection closed'), true);
        throw new OpFailed();
      },
    );
  }

  /** FrameSink: routes a frame's payload to the op waiting for it, aside, or to the bin. */
  onHeader(peer: number, h: FrameHeader): { target: Uint8Array; done: () => void } {
    if (h.type === FrameType.Goodbye) return { target: new Uint8Array(0), done: () => {} };
    if (h.type === FrameType.Abort) {
      const text = new Uint8Array(h.payloadBytes);
      return { target: text, done: () => this.onAbort(peer, h, Buffer.from(text).toString('utf8')) };
    }
    if (this.broken.has(h.group)) return { target: this.bin(h.payloadBytes), done: () => {} };
    const mailbox = this.mailbox(mailboxKey(h.group, h.tag, peer, h.seq));
    const op = mailbox.op;
    const ek = `${peer}:${h.step}`;
    if (op) {
      const problem = this.checkDescriptor(op, h, peer);
      if (problem) {
        this.finish(op, problem, true);
        return { target: this.bin(h.payloadBytes), done: () => {} };
      }
      const e = mailbox.expected.get(ek);
      if (e) {
        mailbox.expected.delete(ek);
        const sizeProblem = this.checkSize(op, h, peer, e.dest);
        if (sizeProblem) {
          this.finish(op, sizeProblem, true);
          return { target: this.bin(h.payloadBytes), done: () => {} };
        }
        if (!e.reduce) return { target: e.dest, done: e.resolve };
        const tmp = this.scratchFor(peer, h.payloadBytes);
        return {
          target: tmp,
          done: () => {
            e.reduce!(e.dest, tmp);
            e.resolve();
          },
        };
      }
    }
    // nobody waits yet: keep it aside (aligned memory, so typed views of it work)
    const data = new Uint8Array(h.payloadBytes);
    return {
      target: data,
      done: () => {
        const waiting = mailbox.expected.get(ek);
        if (waiting && mailbox.op && !mailbox.op.finished) {
          mailbox.expected.delete(ek);
          const sizeProblem = this.checkSize(mailbox.op, h, peer, waiting.dest);
          if (sizeProblem) {
            this.finish(mailbox.op, sizeProblem, true);
            return;
          }
          if (waiting.reduce) waiting.reduce(waiting.dest, data);
          else waiting.dest.set(data);
          waiting.resolve();
        } else mailbox.early.set(ek, { h, peer, data });
      },
    };
  }

  /** FrameSink: a peer's connection ended. */
  onPeerLost(peer: number, clean: boolean, reason: string): void {
    if (this.lost.has(peer)) return;
    this.lost.set(peer, { clean, reason });
    for (const op of [...this.active]) {
      if (op.finished || !op.req.ranks.includes(peer)) continue;
      // a peer that said goodbye has sent all it will send: only ops still waiting for it fail
      const waitsOnPeer = [...op.mailbox.expected.values()].some((e) => e.peer === peer);
      if (!clean || waitsOnPeer) this.finish(op, this.lostFailure(op, peer, reason), true);
    }
  }

  private lostFailure(op: ActiveOp, peer: number, reason: string): Failure {
    const how = reason === 'shut down' ? 'shut down (destroyed its process group)' : 'disconnected';
    return { kind: 'comm', message: `rank ${peer} ${how} during ${this.label(op)}`, peer };
  }

  private onAbort(peer: number, h: FrameHeader, message: string): void {
    if (this.broken.has(h.group)) return;
    const failure: Failure = {
      kind: errorKindFrom(h.aux),
      message: `${message} (reported by rank ${peer})`,
      peer: h.root >= 0 ? h.root : undefined,
    };
    this.broken.set(h.group, failure);
    for (const op of [...this.active]) if (op.req.group === h.group) this.finish(op, failure, false);
  }

  private onTimeout(op: ActiveOp): void {
    if (op.finished) return;
    let peer: number | undefined;
    for (const e of op.mailbox.expected.values()) {
      peer = e.peer;
      break;
    }
    if (peer === undefined) for (const [p, n] of op.writing) if (n > 0) peer = p;
    const waiting = peer === undefined ? '' : ` waiting for rank ${peer}`;
    this.finish(
      op,
      { kind: 'timeout', message: `${this.label(op)} timed out after ${seconds(op.req.timeoutMs)}${waiting}`, peer },
      true,
    );
  }

  /** Ends an op: reports it, and on failure breaks its group and (when `tell`) tells the other members. */
  private finish(op: ActiveOp, failure: Failure | undefined, tell: boolean): void {
    if (op.finished) return;
    op.finished = true;
    clearTimeout(op.timer);
    this.active.delete(op);
    if (op.mailbox.op === op) this.mailboxes.delete(op.key);
    const { req } = op;
    if (!failure) {
      this.report({ id: req.id, ok: true }, req.slot);
      return;
    }
    this.report(
      { id: req.id, ok: false, errorKind: failure.kind, message: failure.message, peerRank: failure.peer },
      req.slot,
    );
    if (this.broken.has(req.group)) return;
    this.broken.set(req.group, failure);
    if (tell) {
      const payload = Buffer.from(failure.message, 'utf8');
      for (const peer of req.ranks) {
        if (peer === this.rank || this.lost.has(peer)) continue;
        const h: FrameHeader = {
          type: FrameType.Abort,
          group: req.group,
          seq: req.seq,
          tag: -1,
          step: 0,
          kind: req.kind,
          dtype: req.dtype,
          redop: req.redop,
          root: failure.peer ?? -1,
          count: 0,
          payloadBytes: payload.length,
          aux: errorKindCode(failure.kind),
        };
        this.mesh.send(peer, h, payload).catch(() => {});
      }
    }
    for (const other of [...this.active]) if (other.req.group === req.group) this.finish(other, failure, false);
  }

  private label(op: ActiveOp): string {
    const { req } = op;
    const where = req.ranks.length === this.groupWorldSize() ? '' : ` in group [${req.ranks.join(', ')}]`;
    if (req.kind === 'send' || req.kind === 'recv') {
      return `${req.kind} of ${req.count} ${req.dtype} ${req.kind === 'send' ? 'to' : 'from'} rank ${req.ranks[req.root]} (tag ${req.tag}, message #${req.seq})${where}`;
    }
    return `${req.kind} #${req.seq}${where}`;
  }

  private groupWorldSize(): number {
    return this.mesh.worldSize;
  }

  /** Compares a frame's descriptor with this rank's own call; a difference is a mismatch naming both sides. */
  private checkDescriptor(op: ActiveOp, h: OpDescriptor & { seq: number }, peer: number): Failure | undefined {
    const mine = op.req;
    if (mine.kind === 'recv') {
      if (h.kind === 'send' && h.count === mine.count && h.dtype === mine.dtype) return undefined;
      return {
        kind: 'mismatch',
        message: `rank ${peer} called ${describeOp(h)} with tag ${mine.tag} where rank ${this.rank} called recv(${mine.count} ${mine.dtype}) from it (message #${mine.seq})`,
        peer,
      };
    }
    const same =
      h.kind === mine.kind &&
      h.count === mine.count &&
      h.dtype === mine.dtype &&
      h.redop === mine.redop &&
      h.root === mine.root;
    if (same) return undefined;
    const where = mine.ranks.length === this.mesh.worldSize ? '' : ` in group [${mine.ranks.join(', ')}]`;
    return {
      kind: 'mismatch',
      message: `rank ${peer} called ${describeOp(h)} where rank ${this.rank} called ${describeOp(mine)} at sequence ${mine.seq}${where}`,
      peer,
    };
  }

  private checkSize(op: ActiveOp, h: FrameHeader, peer: number, dest: Uint8Array): Failure | undefined {
    if (h.payloadBytes === dest.byteLength) return undefined;
    return (
      this.checkDescriptor(op, h, peer) ?? {
        kind: 'mismatch',
        message: `rank ${peer} sent ${h.payloadBytes} bytes where rank ${this.rank} expected ${dest.byteLength} in ${this.label(op)}`,
        peer,
      }
    );
  }

  private mailbox(key: string): Mailbox {
    let m = this.mailboxes.get(key);
    if (!m) this.mailboxes.set(key, (m = new Mailbox()));
    return m;
  }

  private scratchFor(peer: number, bytes: number): Uint8Array {
    let s = this.scratch.get(peer);
    if (!s || s.byteLength < bytes) this.scratch.set(peer, (s = new Uint8Array(Math.max(bytes, 1 << 16))));
    return s.subarray(0, bytes);
  }

  private bin(bytes: number): Uint8Array {
    if (this.discard.byteLength < bytes) this.discard = new Uint8Array(bytes);
    return this.discard.subarray(0, bytes);
  }
}
