/**
 * What travels between the main thread, the socket worker and the peers: op kinds and codes, the frame
 * header every message carries (so that a receiver can check it against its own call), and the messages
 * between the main thread and the worker. Imported by both threads; no dependency on core (the worker must
 * not load tfjs).
 */
import type { CommDtype, ReduceOp } from '@zeroflow/core';

export const OP_KINDS = ['allReduce', 'reduceScatter', 'allGather', 'broadcast', 'barrier', 'send', 'recv'] as const;
export type OpKind = (typeof OP_KINDS)[number];
export const DTYPES: readonly CommDtype[] = ['float32', 'float16', 'bfloat16', 'int32'];
export const REDUCE_OPS: readonly ReduceOp[] = ['sum', 'avg', 'max', 'min'];

export function bytesPerElement(dtype: CommDtype): number {
  return dtype === 'float16' || dtype === 'bfloat16' ? 2 : 4;
}

/** What a rank called: compared field by field against the peers' calls. */
export interface OpDescriptor {
  kind: OpKind;
  dtype: CommDtype;
  redop: ReduceOp;
  /** Group rank of the root (broadcast) or peer (send/recv); -1 otherwise. */
  root: number;
  /** Element count the caller passed (allGather: per-rank input; reduceScatter: per-rank output). */
  count: number;
}

/** Human form of a call, as in error messages: `allReduce(1024 float32 sum)`. */
export function describeOp(d: OpDescriptor): string {
  switch (d.kind) {
    case 'allReduce':
    case 'reduceScatter':
      return `${d.kind}(${d.count} ${d.dtype} ${d.redop})`;
    case 'broadcast':
      return `broadcast(${d.count} ${d.dtype} from group rank ${d.root})`;
    case 'barrier':
      return 'barrier()';
    default:
      return `${d.kind}(${d.count} ${d.dtype})`;
  }
}

export const FRAME_HEADER_BYTES = 40;
export enum FrameType {
  Data = 1,
  /** Payload: UTF-8 message; `aux` says which error class (see ErrorKind). */
  Abort = 2,
  /** The peer is shutting down cleanly. */
  Goodbye = 3,
}

export type ErrorKind = 'comm' | 'timeout' | 'mismatch';
const ERROR_KINDS: readonly ErrorKind[] = ['comm', 'timeout', 'mismatch'];

/** A decoded frame header. */
export interface FrameHeader extends OpDescriptor {
  type: FrameType;
  group: number;
  seq: number;
  /** -1 for collectives, the user tag (>= 0) for point to point. */
  tag: number;
  /** Index of the frame within its op (phase, step and segment folded into one number). */
  step: number;
  payloadBytes: number;
  aux: number;
}

export function encodeHeader(h: FrameHeader): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  b.writeUInt32LE(h.type, 0);
  b.writeUInt32LE(h.group >>> 0, 4);
  b.writeUInt32LE(h.seq >>> 0, 8);
  b.writeInt32LE(h.tag, 12);
  b.writeUInt32LE(h.step >>> 0, 16);
  b.writeUInt8(OP_KINDS.indexOf(h.kind), 20);
  b.writeUInt8(DTYPES.indexOf(h.dtype), 21);
  b.writeUInt8(REDUCE_OPS.indexOf(h.redop), 22);
  b.writeUInt8(0, 23);
  b.writeInt32LE(h.root, 24);
  b.writeUInt32LE(h.count >>> 0, 28);
  b.writeUInt32LE(h.payloadBytes >>> 0, 32);
  b.writeUInt32LE(h.aux >>> 0, 36);
  return b;
}

/** Decodes a header; returns undefined when it is not one of ours (a corrupt or foreign stream). */
export function decodeHeader(b: Uint8Array): FrameHeader | undefined {
  const v = Buffer.from(b.buffer, b.byteOffset, FRAME_HEADER_BYTES);
  const type = v.readUInt32LE(0);
  const kind = OP_KINDS[v.readUInt8(20)];
  const dtype = DTYPES[v.readUInt8(21)];
  const redop = REDUCE_OPS[v.readUInt8(22)];
  if (type < FrameType.Data || type > FrameType.Goodbye || !kind || !dtype || !redop) return undefined;
  return {
    type,
    group: v.readUInt32LE(4),
    seq: v.readUInt32LE(8),
    tag: v.readInt32LE(12),
    step: v.readUInt32LE(16),
    kind,
    dtype,
    redop,
    root: v.readInt32LE(24),
    count: v.readUInt32LE(28),
    payloadBytes: v.readUInt32LE(32),
    aux: v.readUInt32LE(36),
  };
}

export function errorKindCode(k: ErrorKind): number {
  return ERROR_KINDS.indexOf(k);
}
export function errorKindFrom(code: number): ErrorKind {
  return ERROR_KINDS[code] ?? 'comm';
}

/** Main thread -> worker: run one operation. */
export interface OpRequest extends OpDescriptor {
  type: 'op';
  id: number;
  /** Index of this op's status word in the control array. */
  slot: number;
  group: number;
  /** Global ranks of the group members, in group-rank order. */
  ranks: number[];
  seq: number;
  tag: number;
  /** The staging buffer the op works on, in place. */
  sab: SharedArrayBuffer;
  byteOffset: number;
  /** Elements of `dtype` in the staging view. */
  length: number;
  timeoutMs: number;
}

/** Worker -> main thread, on the completion port. */
export interface OpResult {
  id: number;
  ok: boolean;
  errorKind?: ErrorKind;
  message?: string;
  peerRank?: number;
}

/** Status words of the control array (Int32Array over a SharedArrayBuffer). */
export const STATUS_PENDING = 0;
export const STATUS_DONE = 1;
export const STATUS_FAILED = 2;

/** Worker startup data. */
export interface WorkerConfig {
  rank: number;
  worldSize: number;
  token: string;
  listenHost: string;
  control: SharedArrayBuffer;
  segmentBytes: number;
  connectTimeoutMs: number;
}
