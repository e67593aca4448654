import { timingSafeEqual } from 'node:crypto';
import net from 'node:net';
import { FrameFields, FrameReader, FrameWriter, STORE_MAGIC, StoreOp } from './store-protocol.js';
import { CommError } from './types.js';

/** Options of {@link TCPStoreServer.listen}. */
export interface TCPStoreServerOptions {
  /** Interface to bind, e.g. `127.0.0.1` or `0.0.0.0`. */
  host: string;
  /** Port to bind; 0 picks a free one (read it back from `server.port`). */
  port: number;
  /** The job token every client must present (env ZEROFLOW_JOB_TOKEN). */
  token: string;
}

interface Waiter {
  keys: string[];
  done: () => void;
  timer: NodeJS.Timeout;
}

function tokenMatches(expected: string, given: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(given, 'utf8');
  // constant time in the token bytes, so the token cannot be guessed byte by byte
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The rendezvous key-value store server (PyTorch's TCPStore, our framing). Rank 0 or the launcher hosts
 * it; every client proves it belongs to the job with the job token before any other request is served.
 */
export class TCPStoreServer {
  private readonly data = new Map<string, Buffer>();
  private readonly waiters = new Set<Waiter>();
  private readonly sockets = new Set<net.Socket>();
  private closed = false;

  private constructor(
    private readonly server: net.Server,
    private readonly token: string,
    readonly host: string,
    readonly port: number,
  ) {}

  /** Binds and starts serving. Fails with a clear CommError when the port is taken. */
  static listen(opts: TCPStoreServerOptions): Promise<TCPStoreServer> {
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once('error', (err: NodeJS.ErrnoException) => {
        const where = `${opts.host}:${opts.port}`;
        if (err.code === 'EADDRINUSE') {
          reject(
            new CommError(
              `cannot host the rendezvous store: port ${opts.port} on ${opts.host} is already in use ` +
                '(another job or a leftover process?); choose another MASTER_PORT',
            ),
          );
        } else reject(new CommError(`cannot host the rendezvous store at ${where}: ${err.message}`));
      });
      server.listen(opts.port, opts.host, () => {
        const addr = server.address() as net.AddressInfo;
        const store = new TCPStoreServer(server, opts.token, opts.host, addr.port);
        server.on('connection', (s) => store.accept(s));
        server.on('error', () => {});
        resolve(store);
      });
    });
  }

  /** Number of keys held (for tests and diagnostics). */
  get size(): number {
    return this.data.size;
  }

  /** Stops serving and drops every client connection. */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const w of this.waiters) clearTimeout(w.timer);
    this.waiters.clear();
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    let authenticated = false;
    const reply = (frame: Buffer) => {
      if (!socket.destroyed) socket.write(frame);
    };
    const reader = new FrameReader((body) => {
      const f = new FrameFields(body);
      if (!authenticated) {
        if (f.op !== StoreOp.Hello || f.number() !== STORE_MAGIC || !tokenMatches(this.token, f.string())) {
          socket.end(new FrameWriter(StoreOp.Rejected, f.requestId).bytes('job token rejected').finish());
          socket.destroySoon();
          return;
        }
        authenticated = true;
        reply(new FrameWriter(StoreOp.Ok, f.requestId).finish());
        return;
      }
      try {
        this.handle(f, reply);
      } catch (err) {
        reply(new FrameWriter(StoreOp.Failed, f.requestId).bytes(String((err as Error).message)).finish());
      }
    });
    socket.on('data', (chunk) => {
      try {
        reader.push(chunk);
      } catch {
        socket.destroy(); // garbage or an oversized frame: not one of ours
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.sockets.delete(socket));
  }

  private handle(f: FrameFields, reply: (frame: Buffer) => void): void {
    const id = f.requestId;
    switch (f.op) {
      case StoreOp.Set: {
        const key = f.string();
        this.data.set(key, Buffer.from(f.bytes()));
        this.wake();
        reply(new FrameWriter(StoreOp.Ok, id).finish());
        return;
      }
      case StoreOp.Get: {
        const key = f.string();
        const timeoutMs = f.number();
        this.whenPresent([key], timeoutMs, (ok) =>
          reply(
            ok
              ? new FrameWriter(StoreOp.Value, id).bytes(this.data.get(key)!).finish()
              : new FrameWriter(StoreOp.Timeout, id).finish(),
          ),
        );
        return;
      }
      case StoreOp.Add: {
        const key = f.string();
        const delta = f.number();
        const prev = this.data.get(key);
        const current = prev === undefined ? 0 : Number(prev.toString('utf8'));
        if (!Number.isFinite(current)) throw new Error(`key "${key}" does not hold a number`);
        const next = current + delta;
        this.data.set(key, Buffer.from(String(next), 'utf8'));
        this.wake();
        reply(new FrameWriter(StoreOp.Number, id).number(next).finish());
        return;
      }
      case StoreOp.CompareSet: {
        const key = f.string();
        const expected = f.bytes();
        const desired = f.bytes();
        const current = this.data.get(key) ?? Buffer.alloc(0);
        if (current.equals(expected)) {
          this.data.set(key, Buffer.from(desired));
          this.wake();
        }
        reply(new FrameWriter(StoreOp.Value, id).bytes(this.data.get(key) ?? Buffer.alloc(0)).finish());
        return;
      }
      case StoreOp.Wait: {
        const n = f.number();
        const keys: string[] = [];
        for (let i = 0; i < n; i++) keys.push(f.string());
        const timeoutMs = f.number();
        this.whenPresent(keys, timeoutMs, (ok) =>
          reply(new FrameWriter(ok ? StoreOp.Ok : StoreOp.Timeout, id).finish()),
        );
        return;
      }
      case StoreOp.Delete: {
        const existed = this.data.delete(f.string());
        reply(new FrameWriter(StoreOp.Number, id).number(existed ? 1 : 0).finish());
        return;
      }
      default:
        throw new Error(`unknown store request ${f.op}`);
    }
  }

  /** Calls `done(true)` once every key exists, or `done(false)` after `timeoutMs`. */
  private whenPresent(keys: string[], timeoutMs: number, done: (ok: boolean) => void): void {
    if (keys.every((k) => this.data.has(k))) {
      done(true);
      return;
    }
    const waiter: Waiter = {
      keys,
      done: () => done(true),
      timer: setTimeout(
        () => {
          this.waiters.delete(waiter);
          done(false);
        },
        Math.max(0, timeoutMs),
      ),
    };
    this.waiters.add(waiter);
  }

  private wake(): void {
    for (const w of this.waiters) {
      if (w.keys.every((k) => this.data.has(k))) {
        clearTimeout(w.timer);
        this.waiters.delete(w);
        w.done();
      }
    }
  }
}
