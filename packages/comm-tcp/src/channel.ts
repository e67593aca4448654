/**
 * The main thread's side of the socket worker: submits operations, tracks their completion, and blocks in
 * `Atomics.wait` on an op's status word when the caller wants a synchronous `wait()` (tfjs backward cannot
 * await). Also pools the SharedArrayBuffers used as staging memory, because allocating (zero-filling) a
 * fresh one per call costs more than the copy it avoids.
 */
import { type MessagePort, receiveMessageOnPort, type Worker } from 'node:worker_threads';
import { CommError, CommMismatchError, CommTimeoutError, type Work } from '@zeroflow/core';
import { type OpRequest, type OpResult, STATUS_PENDING } from './wire.js';

export const CONTROL_SLOTS = 4096;
/** Slot 0 of the control array is the shutdown handshake; ops use the others. */
export const SHUTDOWN_SLOT = 0;
/** Extra time the main thread waits beyond an op's own timeout before declaring the worker itself dead. */
const WORKER_GRACE_MS = 10_000;

/** A submitted operation; also the `Work` handed to the caller. */
export class PendingWork implements Work {
  done = false;
  error: Error | undefined;
  readonly promise: Promise<void>;
  private settle!: { resolve: () => void; reject: (e: Error) => void };

  constructor(
    readonly id: number,
    readonly slot: number,
    readonly timeoutMs: number,
    private readonly channel: WorkerChannel,
    /** Runs once on completion (copy out of staging, release staging); `ok` says whether the op succeeded. */
    private readonly finalize: (ok: boolean) => void,
  ) {
    this.promise = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // callers that only use wait() must not see an unhandled rejection
    this.promise.catch(() => {});
  }

  wait(): void {
    if (!this.done) this.channel.block(this);
    if (this.error) throw this.error;
  }

  isCompleted(): boolean {
    if (!this.done) this.channel.poll();
    return this.done;
  }

  complete(error: Error | undefined): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    try {
      this.finalize(!error);
    } catch (e) {
      this.error ??= e as Error;
    }
    if (this.error) this.settle.reject(this.error);
    else this.settle.resolve();
  }
}

/** A finished op of a group that will never run (bad arguments are thrown at the call instead). */
export function errorOf(r: OpResult): Error {
  const msg = r.message ?? 'unknown failure';
  if (r.errorKind === 'timeout') return new CommTimeoutError(msg, r.peerRank);
  if (r.errorKind === 'mismatch') return new CommMismatchError(msg);
  return new CommError(msg);
}

export class WorkerChannel {
  private readonly control: Int32Array;
  private readonly pending = new Map<number, PendingWork>();
  private readonly freeSlots: number[] = [];
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly worker: Worker,
    controlBuffer: SharedArrayBuffer,
    private readonly port: MessagePort,
  ) {
    this.control = new Int32Array(controlBuffer);
    for (let s = CONTROL_SLOTS - 1; s > SHUTDOWN_SLOT; s--) this.freeSlots.push(s);
    port.on('message', (r: OpResult) => this.dispatch(r));
    port.unref();
    worker.unref();
  }

  /** Sends an op to the worker; `finalize` runs on completion (on this thread). */
  submit(req: Omit<OpRequest, 'type' | 'id' | 'slot'>, finalize: (ok: boolean) => void): PendingWork {
    if (this.closed) throw new CommError('the process group was destroyed');
    const slot = this.freeSlots.pop();
    if (slot === undefined)
      throw new CommError(`more than ${CONTROL_SLOTS - 1} comm operations in flight: wait for some`);
    const id = this.nextId++;
    Atomics.store(this.control, slot, STATUS_PENDING);
    const work = new PendingWork(id, slot, req.timeoutMs, this, finalize);
    this.pending.set(id, work);
    if (this.pending.size === 1) this.port.ref(); // keep the process alive for `await work.promise`
    this.worker.postMessage({ ...req, type: 'op', id, slot } satisfies OpRequest);
    return work;
  }

  /** Blocks this thread until `work` completes (or the worker is presumed dead). */
  block(work: PendingWork): void {
    const deadline = Date.now() + work.timeoutMs + WORKER_GRACE_MS;
    while (!work.done) {
      const left = deadline - Date.now();
      if (left <= 0) {
        this.retire(
          work,
          new CommTimeoutError(
            `the tcp comm worker thread did not finish op #${work.id} within ${Math.round((work.timeoutMs + WORKER_GRACE_MS) / 1000)} s`,
          ),
        );
        return;
      }
      Atomics.wait(this.control, work.slot, STATUS_PENDING, Math.min(left, 1000));
      this.poll();
    }
  }

  /** Reads every result the worker has posted, without waiting. */
  poll(): void {
    for (;;) {
      const m = receiveMessageOnPort(this.port);
      if (!m) return;
      this.dispatch(m.message as OpResult);
    }
  }

  private dispatch(r: OpResult): void {
    const work = this.pending.get(r.id);
    if (work) this.retire(work, r.ok ? undefined : errorOf(r));
  }

  private retire(work: PendingWork, error: Error | undefined): void {
    if (!this.pending.delete(work.id)) return;
    if (this.pending.size === 0) this.port.unref();
    // a timed-out slot may still be written by the worker: never reuse it
    if (!(error && !this.control[work.slot])) this.freeSlots.push(work.slot);
    work.complete(error);
  }

  /** Asks the worker to say goodbye to the peers and close, waits up to `graceMs`, then stops it. */
  shutdown(graceMs: number): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.control, SHUTDOWN_SLOT, STATUS_PENDING);
    this.worker.postMessage({ type: 'shutdown', slot: SHUTDOWN_SLOT, graceMs });
    Atomics.wait(this.control, SHUTDOWN_SLOT, STATUS_PENDING, graceMs + 1000);
    this.poll();
    for (const work of [...this.pending.values()])
      this.retire(work, new CommError('the process group was destroyed while this op was in flight'));
    void this.worker.terminate();
    this.port.close();
  }
}

/** Pools SharedArrayBuffers by power-of-two size. */
export class StagingPool {
  private readonly free = new Map<number, SharedArrayBuffer[]>();

  acquire(bytes: number): SharedArrayBuffer {
    const size = Math.max(4096, 2 ** Math.ceil(Math.log2(Math.max(1, bytes))));
    return this.free.get(size)?.pop() ?? new SharedArrayBuffer(size);
  }

  release(sab: SharedArrayBuffer): void {
    const list = this.free.get(sab.byteLength) ?? [];
    if (list.length < 4) list.push(sab);
    this.free.set(sab.byteLength, list);
  }
}
