/**
 * The bookkeeping behind ZeRO-3 prefetch: the recorded order of a forward+backward's gathers (DeepSpeed's
 * "trace" of submodule executions) and a pool of staging buffers, so that several all-gathers can be in
 * flight at once without allocating shared memory per gather.
 */
import { type FlatBuffer, sharedFloat32, sharedUint16 } from '@zeroflow/core';
import type { ParamSlot } from './layout.js';

/** What {@link GatherTrace.next} found for one gather. */
export type TraceStep =
  /** The gather is the trace's next event. */
  | 'match'
  /** This pass records the trace. */
  | 'recording'
  /** No trace (prefetch off, or dropped in this pass): gather on demand. */
  | 'none'
  /** The gather departs from the trace; `why` says how. */
  | { mismatch: string };

export function sameSlots(a: readonly ParamSlot[], b: readonly ParamSlot[]): boolean {
  return a.length === b.length && a.every((s, i) => s === b[i]);
}

const names = (slots: readonly ParamSlot[]) => slots.map((s) => s.name).join(', ');

/** Parameter elements of one gather. */
export const elementsOf = (slots: readonly ParamSlot[]) => slots.reduce((a, s) => a + s.param.size, 0);

/**
 * The gathers of one forward+backward in order, recorded in the first pass after it is (re)started and
 * then followed pass by pass. Every micro-step of the same model and control flow makes the same gathers.
 */
export class GatherTrace {
  private events: (readonly ParamSlot[])[] | null = null;
  private recording: (readonly ParamSlot[])[] | null = null;
  private cursor = 0;
  private largest = 0;

  /** Number of recorded events (0 while none is complete). */
  get length(): number {
    return this.events?.length ?? 0;
  }

  /** A pass starts: follows the trace from its start, or records one when there is none. */
  begin(): void {
    this.cursor = 0;
    this.recording = this.events ? null : [];
  }

  /** Classifies the pass's next gather; on a match, advances past it. */
  next(slots: readonly ParamSlot[]): TraceStep {
    if (this.recording) {
      this.recording.push(slots);
      return 'recording';
    }
    if (!this.events) return 'none';
    const want = this.events[this.cursor];
    if (!want)
      return { mismatch: `gather #${this.cursor + 1} (${names(slots)}) is past the ${this.events.length} traced` };
    if (!sameSlots(want, slots))
      return { mismatch: `gather #${this.cursor + 1} is ${names(slots)}, the trace has ${names(want)}` };
    this.cursor++;
    return 'match';
  }

  /** Index of the last matched event (-1 before the first). */
  get position(): number {
    return this.cursor - 1;
  }

  /** Event `i` of the trace (null past the end or without a trace). */
  at(i: number): readonly ParamSlot[] | null {
    return this.events?.[i] ?? null;
  }

  /** Elements of the largest event (0 without a trace). */
  get largestEvent(): number {
    return this.events ? this.largest : 0;
  }

  /**
   * The next index after `i` whose event gathers the same parameters, if it comes before `distance`
   * elements of other gathers have gone by (DeepSpeed's `stage3_max_reuse_distance` walk over the trace);
   * -1 otherwise.
   */
  nextReuse(i: number, distance: number): number {
    const events = this.events;
    const ev = events?.[i];
    if (!events || !ev) return -1;
    let traversed = 0;
    for (let j = i + 1; j < events.length && traversed < distance; j++) {
      if (sameSlots(events[j], ev)) return j;
      traversed += elementsOf(events[j]);
    }
    return -1;
  }

  /** The pass is over: keeps a recording; returns why the trace is stale if the pass stopped short of it. */
  end(): string | null {
    if (this.recording) {
      this.events = this.recording.length ? this.recording : null;
      this.largest = Math.max(0, ...this.recording.map(elementsOf));
      this.recording = null;
      return null;
    }
    if (this.events && this.cursor !== this.events.length)
      return `the pass made ${this.cursor} of the ${this.events.length} traced gathers`;
    return null;
  }

  /** Forgets the trace; the next pass records a new one. */
  invalidate(): void {
    this.events = null;
    this.recording = null;
  }
}

/** Input and output buffers of one all-gather (views of pooled shared memory): fp32, or 16-bit under amp. */
export interface GatherStaging<B extends FlatBuffer = FlatBuffer> {
  input: B;
  output: B;
  /** The pooled buffers the views come from. */
  raw: { input: B; output: B };
}

/** Reusable staging buffers: one pair per all-gather in flight. */
export class StagingPool {
  private readonly free: { input: FlatBuffer; output: FlatBuffer }[] = [];
  private allocated = 0;

  /** @param half 16-bit staging (amp: gathers move 16-bit bit patterns) instead of fp32 */
  constructor(private readonly half = false) {}

  /** Bytes of staging memory allocated so far. */
  get bytes(): number {
    return this.allocated;
  }

  private alloc(n: number): FlatBuffer {
    return this.half ? sharedUint16(n) : sharedFloat32(n);
  }

  /** Buffers for a gather of `block` elements per rank over `n` ranks. */
  take(block: number, n: number): GatherStaging {
    let i = this.free.findIndex((b) => b.input.length >= block && b.output.length >= n * block);
    if (i < 0 && this.free.length > 0) {
      // Grow the largest free pair rather than keep many small ones.
      i = 0;
      const old = this.free[0];
      this.allocated -= old.input.byteLength + old.output.byteLength;
      this.free[0] = { input: this.alloc(block), output: this.alloc(n * block) };
      this.allocated += this.free[0].input.byteLength + this.free[0].output.byteLength;
    }
    let raw: { input: FlatBuffer; output: FlatBuffer };
    if (i < 0) {
      raw = { input: this.alloc(block), output: this.alloc(n * block) };
      this.allocated += raw.input.byteLength + raw.output.byteLength;
    } else raw = this.free.splice(i, 1)[0];
    return { input: raw.input.subarray(0, block), output: raw.output.subarray(0, n * block), raw };
  }

  /** Returns buffers taken with {@link take}. */
  give(s: GatherStaging): void {
    this.free.push(s.raw);
  }
}
