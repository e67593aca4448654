import type { CommError, Work } from '@zeroflow/core';
import { errorFromNative, type NativeResult } from './codes.js';

/** What a Work needs from its group: a blocking wait on the native operation. */
export interface WorkOwner {
  /** Blocks until the native operation is done; returns its outcome (once per id). */
  collect(id: number): NativeResult;
  /** Error context, e.g. `shm group [0,1] (rank 0)`. */
  readonly label: string;
}

/**
 * A pending shm operation. The operation runs on a native thread; `wait()` blocks this thread on it (usable
 * inside a tfjs gradient function), `promise` settles when the addon's completion callback arrives. The
 * buffers are referenced here so they stay alive (and unmoved) until the native side is done with them.
 */
export class ShmWork implements Work {
  private done = false;
  private error: CommError | undefined;
  private lazyPromise: Promise<void> | undefined;
  private resolveFn: (() => void) | undefined;
  private rejectFn: ((e: CommError) => void) | undefined;
  /** The operation's buffers, referenced until it completes so GC cannot free memory the native side uses. */
  keepAlive: unknown[] | undefined;

  constructor(
    private readonly owner: WorkOwner,
    readonly id: number,
    buffers: unknown[],
  ) {
    this.keepAlive = buffers;
  }

  wait(): void {
    if (!this.done) this.settle(this.owner.collect(this.id));
    if (this.error) throw this.error;
  }

  get promise(): Promise<void> {
    // Created on first use, so a failure nobody asked about never becomes an unhandled rejection.
    if (!this.lazyPromise) {
      if (this.done) {
        this.lazyPromise = this.error ? Promise.reject(this.error) : Promise.resolve();
      } else {
        this.lazyPromise = new Promise<void>((resolve, reject) => {
          this.resolveFn = resolve;
          this.rejectFn = reject;
        });
      }
    }
    return this.lazyPromise;
  }

  isCompleted(): boolean {
    return this.done;
  }

  /** Called by the group when the native completion callback arrives (the op is done: no blocking). */
  complete(): void {
    if (!this.done) this.settle(this.owner.collect(this.id));
  }

  private settle(result: NativeResult): void {
    this.done = true;
    this.keepAlive = undefined;
    this.error = errorFromNative(result, this.owner.label);
    if (this.error) this.rejectFn?.(this.error);
    else this.resolveFn?.();
  }
}
