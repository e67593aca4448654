/**
 * The socket mesh of one rank, inside the worker thread. Every ordered pair of ranks has its own TCP
 * connection: rank i connects to rank j and READS on that socket (with `onread`, straight into the memory the
 * frame is bound for), while j WRITES on the socket it accepted. Node offers `onread` only on sockets it
 * connects, so splitting the directions keeps every receive zero-copy without touching Node internals.
 *
 * Each connection starts with a handshake: the connector sends magic, its rank, the world size and the job
 * token; the acceptor answers with a status word and drops anyone with a wrong token.
 */
import { timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { decodeHeader, encodeHeader, FRAME_HEADER_BYTES, type FrameHeader, FrameType } from './wire.js';

const MESH_MAGIC = 0x5a465431; // "ZFT1"
const HELLO_FIXED_BYTES = 16;
const STATUS_OK = 0;
const STATUS_BAD_TOKEN = 1;
const STATUS_BAD_RANK = 2;

/** What the engine does with incoming frames and lost peers. */
export interface FrameSink {
  /** A header arrived from `peer`: return the memory its payload goes to (exactly payloadBytes) and a callback. */
  onHeader(peer: number, h: FrameHeader): { target: Uint8Array; done: () => void };
  /** The connection from `peer` ended; `clean` when the peer said goodbye first. */
  onPeerLost(peer: number, clean: boolean, reason: string): void;
}

/** Reads frames from one peer, each payload straight into the memory the sink names. */
class ReceiveLink {
  private state: 'handshake' | 'header' | 'payload' = 'handshake';
  private readonly head = new Uint8Array(FRAME_HEADER_BYTES);
  private target: Uint8Array = this.head;
  private filled = 0;
  private done: (() => void) | undefined;
  goodbye = false;
  lost = false;

  constructor(
    readonly peer: number,
    private readonly sink: FrameSink,
    private readonly onHandshake: (status: number) => void,
  ) {}

  /** `onread.buffer`: the rest of the current piece, so a read never crosses a frame boundary. */
  nextBuffer = (): Uint8Array => this.target.subarray(this.filled);

  /** `onread.callback`. */
  onRead = (nread: number): boolean => {
    this.filled += nread;
    if (this.filled < this.target.byteLength) return true;
    if (this.state === 'handshake') {
      const status = Buffer.from(this.head.buffer, 0, 4).readUInt32LE(0);
      this.expectHeader();
      this.onHandshake(status);
      return true;
    }
    if (this.state === 'header') {
      const h = decodeHeader(this.head);
      if (!h) {
        this.lost = true;
        this.sink.onPeerLost(this.peer, false, 'sent a corrupt frame header');
        return false;
      }
      if (h.type === FrameType.Goodbye) this.goodbye = true;
      const { target, done } = this.sink.onHeader(this.peer, h);
      if (target.byteLength === 0) {
        done();
        this.expectHeader();
        return true;
      }
      this.state = 'payload';
      this.target = target;
      this.filled = 0;
      this.done = done;
      return true;
    }
    const done = this.done!;
    this.done = undefined;
    this.expectHeader();
    done();
    return true;
  };

  private expectHeader(): void {
    this.state = 'header';
    this.target = this.head;
    this.filled = 0;
  }

  /** Starts with the 4-byte handshake status. */
  expectHandshake(): void {
    this.state = 'handshake';
    this.target = this.head.subarray(0, 4);
    this.filled = 0;
  }
}

/** All connections of this rank. */
export class Mesh {
  private server: net.Server | undefined;
  private readonly sendSockets = new Map<number, net.Socket>();
  private readonly receive = new Map<number, { link: ReceiveLink; socket: net.Socket }>();
  private readyWaiters: (() => void)[] = [];
  port = 0;

  constructor(
    readonly rank: number,
    readonly worldSize: number,
    private readonly token: string,
    private readonly sink: FrameSink,
  ) {}

  /** Starts accepting peers; resolves with the port. */
  listen(host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((s) => this.accept(s));
      server.once('error', reject);
      server.listen(0, host, () => {
        this.port = (server.address() as net.AddressInfo).port;
        resolve(this.port);
      });
      this.server = server;
    });
  }

  /** Connects to every peer (addresses indexed by rank) and waits until every peer has connected back. */
  async connectAll(addresses: string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const outgoing = addresses.map((addr, peer) =>
      peer === this.rank ? Promise.resolve() : this.connectTo(peer, addr, deadline),
    );
    await Promise.all(outgoing);
    await new Promise<void>((resolve, reject) => {
      const check = () => this.sendSockets.size === this.worldSize - 1;
      if (check()) return resolve();
      const timer = setTimeout(
        () => {
          const missing = addresses.map((_, r) => r).filter((r) => r !== this.rank && !this.sendSockets.has(r));
          reject(
            new Error(`ranks ${missing.join(', ')} did not connect to rank ${this.rank} within ${timeoutMs / 1000} s`),
          );
        },
        Math.max(0, deadline - Date.now()),
      );
      this.readyWaiters.push(() => {
        if (check()) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  }

  /** Writes one frame to `peer`; resolves once the kernel has taken the payload (so its memory may change). */
  send(peer: number, header: FrameHeader, payload: Uint8Array | undefined): Promise<void> {
    const socket = this.sendSockets.get(peer);
    if (!socket || socket.destroyed) return Promise.reject(new Error('no connection'));
    return new Promise((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      socket.cork();
      if (payload && payload.byteLength > 0) {
        socket.write(encodeHeader(header));
        socket.write(Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength), cb);
      } else socket.write(encodeHeader(header), cb);
      socket.uncork();
    });
  }

  /** Says goodbye to every peer, flushes, and closes everything. */
  async close(graceMs: number): Promise<void> {
    const bye: FrameHeader = {
      type: FrameType.Goodbye,
      group: 0,
      seq: 0,
      tag: -1,
      step: 0,
      kind: 'barrier',
      dtype: 'float32',
      redop: 'sum',
      root: -1,
      count: 0,
      payloadBytes: 0,
      aux: 0,
    };
    const flushed = [...this.sendSockets.values()].map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.destroyed) return resolve();
          s.once('close', () => resolve());
          s.end(encodeHeader(bye), () => resolve());
        }),
    );
    await Promise.race([Promise.all(flushed), new Promise((r) => setTimeout(r, graceMs))]);
    for (const s of this.sendSockets.values()) s.destroy();
    for (const { socket } of this.receive.values()) socket.destroy();
    this.server?.close();
  }

  private connectTo(peer: number, address: string, deadline: number): Promise<void> {
    const cut = address.lastIndexOf(':');
    const host = address.slice(0, cut);
    const port = Number(address.slice(cut + 1));
    return new Promise((resolve, reject) => {
      const attempt = () => {
        let settled = false;
        const link = new ReceiveLink(peer, this.sink, (status) => {
          settled = true;
          if (status === STATUS_OK) {
            this.receive.set(peer, { link, socket });
            resolve();
          } else {
            socket.destroy();
            reject(
              new Error(
                `rank ${peer} at ${address} refused the connection: ${status === STATUS_BAD_TOKEN ? 'job token rejected' : 'rank not expected'}`,
              ),
            );
          }
        });
        link.expectHandshake();
        const socket = net.connect({ host, port, onread: { buffer: link.nextBuffer, callback: link.onRead } });
        socket.setNoDelay(true);
        socket.once('connect', () => socket.write(this.hello()));
        socket.on('error', () => {});
        socket.on('close', () => {
          if (!settled) {
            if (Date.now() < deadline) setTimeout(attempt, 100);
            else reject(new Error(`could not connect to rank ${peer} at ${address}`));
            return;
          }
          if (!link.lost) {
            link.lost = true;
            this.sink.onPeerLost(peer, link.goodbye, link.goodbye ? 'shut down' : 'connection closed');
          }
        });
      };
      attempt();
    });
  }

  private hello(): Buffer {
    const token = Buffer.from(this.token, 'utf8');
    const b = Buffer.allocUnsafe(HELLO_FIXED_BYTES + token.length);
    b.writeUInt32LE(MESH_MAGIC, 0);
    b.writeUInt32LE(this.rank, 4);
    b.writeUInt32LE(this.worldSize, 8);
    b.writeUInt32LE(token.length, 12);
    token.copy(b, HELLO_FIXED_BYTES);
    return b;
  }

  private accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    let got = Buffer.alloc(0);
    const status = (code: number) => {
      const b = Buffer.allocUnsafe(4);
      b.writeUInt32LE(code, 0);
      return b;
    };
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length < HELLO_FIXED_BYTES) return;
      const tokenLen = got.readUInt32LE(12);
      if (got.readUInt32LE(0) !== MESH_MAGIC || tokenLen > 4096) return void socket.destroy();
      if (got.length < HELLO_FIXED_BYTES + tokenLen) return;
      socket.off('data', onData);
      const peer = got.readUInt32LE(4);
      const given = got.subarray(HELLO_FIXED_BYTES, HELLO_FIXED_BYTES + tokenLen);
      const expected = Buffer.from(this.token, 'utf8');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        socket.end(status(STATUS_BAD_TOKEN));
        return;
      }
      if (
        peer >= this.worldSize ||
        peer === this.rank ||
        got.readUInt32LE(8) !== this.worldSize ||
        this.sendSockets.has(peer)
      ) {
        socket.end(status(STATUS_BAD_RANK));
        return;
      }
      this.sendSockets.set(peer, socket);
      socket.write(status(STATUS_OK));
      for (const w of this.readyWaiters) w();
    };
    socket.on('data', onData);
    socket.on('error', () => {});
  }
}
