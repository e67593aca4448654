import net from 'node:net';
import { FrameFields, FrameReader, FrameWriter, STORE_MAGIC, StoreOp, valueBytes } from './store-protocol.js';
import { CommError, CommTimeoutError, type Store } from './types.js';

/** Options of {@link TCPStore.connect}. */
export interface TCPStoreConnectOptions {
  host: string;
  port: number;
  /** The job token (env ZEROFLOW_JOB_TOKEN); must equal the server's. */
  token: string;
  /**
   * How long to keep retrying until the server is up, and the default timeout of every later call, ms
   * (default 600000).
   */
  timeoutMs?: number;
}

interface Pending {
  resolve: (f: FrameFields) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

const RETRY_INTERVAL_MS = 100;
/** Extra time the client waits beyond a server-side wait before deciding the server itself is gone. */
const REPLY_GRACE_MS = 5_000;

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

function connectOnce(host: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('connect timed out'));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}

/**
 * A client of the rendezvous store ({@link TCPStoreServer}). Safe for concurrent calls: each request has an
 * id and its own timeout.
 */
export class TCPStore implements Store {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: Error | undefined;
  private closing = false;

  private constructor(
    private readonly socket: net.Socket,
    readonly host: string,
    readonly port: number,
    /** Default timeout of calls, ms. */
    readonly timeoutMs: number,
  ) {
    const reader = new FrameReader((body) => {
      const f = new FrameFields(body);
      const p = this.pending.get(f.requestId);
      if (!p) return;
      this.pending.delete(f.requestId);
      clearTimeout(p.timer);
      p.resolve(f);
    });
    socket.on('data', (chunk) => {
      try {
        reader.push(chunk);
      } catch (err) {
        this.fail(new CommError(`garbled reply from the rendezvous store at ${this.where}: ${(err as Error).message}`));
      }
    });
    socket.on('error', (err) =>
      this.fail(
        new CommError(
          `lost the connection to the rendezvous store at ${this.where} (${err.message}): did its host (rank 0 or the launcher) exit?`,
        ),
      ),
    );
    socket.on('close', () => {
      if (!this.closing) {
        this.fail(
          new CommError(
            `the rendezvous store at ${this.where} closed the connection: did its host (rank 0 or the launcher) exit?`,
          ),
        );
      }
    });
  }

  /** `host:port` of the server. */
  get where(): string {
    return `${this.host}:${this.port}`;
  }

  /** The local address of this connection: the interface that reaches the store (and so, likely, the peers). */
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

  /**
   * Connects, retrying until the server is up, then presents the job token. Rejects with a CommError when
   * the store cannot be reached within `timeoutMs` or rejects the token.
   */
  static async connect(opts: TCPStoreConnectOptions): Promise<TCPStore> {
    const timeoutMs = opts.timeoutMs ?? 600_000;
    const deadline = Date.now() + timeoutMs;
    const where = `${opts.host}:${opts.port}`;
    let lastError = '';
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new CommTimeoutError(
          `could not reach the rendezvous store at ${where} within ${seconds(timeoutMs)} (${lastError || 'no answer'}); ` +
            'check MASTER_ADDR/MASTER_PORT and that rank 0 (or the launcher) is running',
        );
      }
      let socket: net.Socket;
      try {
        socket = await connectOnce(opts.host, opts.port, Math.min(left, 5_000));
      } catch (err) {
        lastError = (err as Error).message;
        await new Promise((r) => setTimeout(r, Math.min(RETRY_INTERVAL_MS, Math.max(0, deadline - Date.now()))));
        continue;
      }
      socket.setNoDelay(true);
      const store = new TCPStore(socket, opts.host, opts.port, timeoutMs);
      let reply: FrameFields;
      try {
        reply = await store.request(
          new FrameWriter(StoreOp.Hello, 0).number(STORE_MAGIC).bytes(opts.token),
          Math.max(1, Math.min(left, 10_000)),
        );
      } catch (err) {
        store.close();
        if (err instanceof CommError && /closed the connection|lost the connection/.test(err.message)) {
          throw new CommError(`job token rejected by store at ${where} (the server closed the connection)`);
        }
        throw err;
      }
      if (reply.op === StoreOp.Rejected) {
        store.close();
        throw new CommError(
          `job token rejected by store at ${where}: this process's ZEROFLOW_JOB_TOKEN does not match the job's`,
        );
      }
      return store;
    }
  }

  async set(key: string, value: Uint8Array | string): Promise<void> {
    await this.call(
      new FrameWriter(StoreOp.Set, 0).bytes(key).bytes(valueBytes(value)),
      this.timeoutMs,
      `set("${key}")`,
    );
  }

  async get(key: string, timeoutMs = this.timeoutMs): Promise<Uint8Array> {
    const f = await this.call(
      new FrameWriter(StoreOp.Get, 0).bytes(key).number(timeoutMs),
      timeoutMs + REPLY_GRACE_MS,
      `get("${key}")`,
    );
    if (f.op === StoreOp.Timeout) {
      throw new CommTimeoutError(
        `store get("${key}") at ${this.where} timed out after ${seconds(timeoutMs)}: no rank set it`,
      );
    }
    return new Uint8Array(f.bytes());
  }

  async add(key: string, delta: number): Promise<number> {
    return (
      await this.call(new FrameWriter(StoreOp.Add, 0).bytes(key).number(delta), this.timeoutMs, `add("${key}")`)
    ).number();
  }

  async compareSet(key: string, expected: Uint8Array | string, desired: Uint8Array | string): Promise<Uint8Array> {
    const f = await this.call(
      new FrameWriter(StoreOp.CompareSet, 0).bytes(key).bytes(valueBytes(expected)).bytes(valueBytes(desired)),
      this.timeoutMs,
      `compareSet("${key}")`,
    );
    return new Uint8Array(f.bytes());
  }

  async wait(keys: string[], timeoutMs = this.timeoutMs): Promise<void> {
    const w = new FrameWriter(StoreOp.Wait, 0).number(keys.length);
    for (const k of keys) w.bytes(k);
    w.number(timeoutMs);
    const f = await this.call(w, timeoutMs + REPLY_GRACE_MS, `wait(${keys.length} keys)`);
    if (f.op === StoreOp.Timeout) {
      throw new CommTimeoutError(
        `store wait for [${keys.slice(0, 8).join(', ')}${keys.length > 8 ? ', ...' : ''}] at ${this.where} timed out after ${seconds(timeoutMs)}`,
      );
    }
  }

  async delete(key: string): Promise<boolean> {
    return (
      (await this.call(new FrameWriter(StoreOp.Delete, 0).bytes(key), this.timeoutMs, `delete("${key}")`)).number() ===
      1
    );
  }

  close(): void {
    if (this.closing) return;
    this.closing = true;
    this.fail(new CommError(`the store client for ${this.where} was closed`));
    this.socket.destroy();
  }

  private async call(w: FrameWriter, timeoutMs: number, what: string): Promise<FrameFields> {
    const f = await this.request(w, timeoutMs, what);
    if (f.op === StoreOp.Failed) throw new CommError(`store ${what} at ${this.where} failed: ${f.string()}`);
    return f;
  }

  private request(w: FrameWriter, timeoutMs: number, what = 'request'): Promise<FrameFields> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    // stamp the request id: writers are built before the id is known
    const body = w.finish();
    body.writeUInt32LE(id, 5);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(
          new CommTimeoutError(
            `store ${what} at ${this.where} got no answer within ${seconds(timeoutMs)}: is the store host alive?`,
          ),
        );
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.socket.write(body);
    });
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
  }
}
