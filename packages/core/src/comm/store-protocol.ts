/**
 * Wire format of the rendezvous store (TCPStore). Every message is one frame:
 *
 *   u32 bodyLength | u8 opcode | u32 requestId | fields...
 *
 * little-endian; a field is either a byte string (u32 length + bytes) or a float64 number. Requests carry
 * an id so that a client can keep several calls in flight (a `get` that waits does not block a `set`).
 */

/** Request and reply opcodes. */
export enum StoreOp {
  Hello = 1,
  Set = 2,
  Get = 3,
  Add = 4,
  CompareSet = 5,
  Wait = 6,
  Delete = 7,
  // replies
  Ok = 64,
  Value = 65,
  Number = 66,
  Timeout = 67,
  Rejected = 68,
  Failed = 69,
}

/** Magic number sent first in the handshake so that a stray client (HTTP, another program) is told apart. */
export const STORE_MAGIC = 0x5a465331; // "ZFS1"
/** Frames above this size are a protocol error (a store holds small values: addresses, counters). */
export const MAX_STORE_FRAME = 64 * 1024 * 1024;

/** Builds one frame. */
export class FrameWriter {
  private readonly parts: Buffer[] = [];
  private length = 5;

  constructor(
    readonly op: StoreOp,
    readonly requestId: number,
  ) {}

  bytes(value: Uint8Array | string): this {
    const b =
      typeof value === 'string'
        ? Buffer.from(value, 'utf8')
        : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    const len = Buffer.allocUnsafe(4);
    len.writeUInt32LE(b.length, 0);
    this.parts.push(len, b);
    this.length += 4 + b.length;
    return this;
  }

  number(value: number): this {
    const b = Buffer.allocUnsafe(8);
    b.writeDoubleLE(value, 0);
    this.parts.push(b);
    this.length += 8;
    return this;
  }

  finish(): Buffer {
    const head = Buffer.allocUnsafe(9);
    head.writeUInt32LE(this.length, 0);
    head.writeUInt8(this.op, 4);
    head.writeUInt32LE(this.requestId >>> 0, 5);
    return Buffer.concat([head, ...this.parts], 4 + this.length);
  }
}

/** Reads the fields of one frame body in order. */
export class FrameFields {
  private pos = 5;

  constructor(private readonly body: Buffer) {}

  get op(): StoreOp {
    return this.body.readUInt8(0);
  }

  get requestId(): number {
    return this.body.readUInt32LE(1);
  }

  bytes(): Buffer {
    const len = this.body.readUInt32LE(this.pos);
    const start = this.pos + 4;
    if (start + len > this.body.length) throw new Error('truncated store frame');
    this.pos = start + len;
    return this.body.subarray(start, start + len);
  }

  string(): string {
    return this.bytes().toString('utf8');
  }

  number(): number {
    const v = this.body.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  get remaining(): number {
    return this.body.length - this.pos;
  }
}

/**
 * Splits a byte stream into frame bodies. Feed it every chunk a socket delivers; it calls `onFrame` once per
 * complete frame and throws on an oversized frame (the caller closes the connection).
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly onFrame: (body: Buffer) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    while (this.buffered >= 4) {
      const head = this.peek(4);
      const len = head.readUInt32LE(0);
      if (len > MAX_STORE_FRAME || len < 5) throw new Error(`bad store frame length ${len}`);
      if (this.buffered < 4 + len) return;
      const frame = this.take(4 + len);
      this.onFrame(frame.subarray(4));
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0];
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0];
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}

/** The bytes of a store value given as a string or bytes. */
export function valueBytes(value: Uint8Array | string): Buffer {
  return typeof value === 'string'
    ? Buffer.from(value, 'utf8')
    : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}
