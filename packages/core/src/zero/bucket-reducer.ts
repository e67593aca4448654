/**
 * Gradients reduce-scattered in buckets while backward runs (ZeRO stage 2, DESIGN.md section 6).
 *
 * Each bucket is one ownership unit of a {@link GroupPartition} (N equal chunks, chunk r owned by rank r),
 * so a complete bucket is reduce-scattered as is: rank r receives the sum of every rank's chunk r and adds
 * it to its shard of the gradient. Bucket buffers come from a small pool and go back to it once their
 * reduction is done, so no rank holds more than the buckets being filled or in flight.
 *
 * Launch order is fixed by the layout (DeepSpeed issue #2343): buckets are launched strictly in backward
 * order (descending first-parameter index); one completed early waits for its turn, so all ranks issue the
 * same collectives in the same order. A parameter's gradient is complete when every use counted in forward
 * has delivered its gradient (a tied weight is used twice).
 */
import type { ProcessGroup, Work } from '../comm/types.js';
import { addInto, dtypeOpts, type FlatBuffer, sharedUint16 } from '../engine/half-params.js';
import { ZeroFlowError } from '../errors.js';
import type { Parameter } from '../nn/parameter.js';
import type { HalfFormat } from '../numeric/half.js';
import { sharedFloat32 } from './collectives.js';
import type { GroupPartition } from './partition.js';

interface Bucket {
  group: number;
  /** Index of the unit within its group partition. */
  unit: number;
  start: number;
  length: number;
  /** Parameters overlapping the unit. */
  members: Parameter[];
}

interface Slot {
  /**
   * `[0, L)`: the bucket's full-length gradient; `[L, L + L/N)`: this rank's reduced chunk. fp32, or 16-bit
   * patterns of `BucketReducerOptions.half` (what goes on the wire).
   */
  buf: FlatBuffer;
}

/** Options of {@link BucketReducer}. */
export interface BucketReducerOptions {
  /** false: all-reduce each bucket and keep this rank's chunk (DeepSpeed `reduce_scatter: false`). */
  reduceScatter: boolean;
  /** false: wait for each bucket's reduction as soon as it is launched (DeepSpeed `overlap_comm: false`). */
  overlap: boolean;
  /** Most launched, unfinished reductions at once. */
  maxInFlight: number;
  /**
   * Parameters in model (forward) order, which fixes the launch order; default: the groups' order, which
   * interleaves badly with backward when param groups split layers (decayed / not decayed).
   */
  modelOrder?: readonly Parameter[];
  /**
   * Mixed precision: bucket buffers hold 16-bit gradients of this format and are reduced as such (half the
   * wire bytes of fp32); `shardGrads` may be fp32 or 16-bit of the same format. Default: fp32 buckets.
   */
  half?: HalfFormat;
}

/** Reduces full per-parameter gradients into per-rank gradient shards, bucket by bucket. */
export class BucketReducer {
  private readonly buckets: Bucket[] = [];
  private readonly where = new Map<Parameter, { group: number; offset: number; size: number; buckets: number[] }>();
  private readonly slots: (Slot | null)[];
  private readonly pool = new Map<number, Slot[]>();
  private readonly usesLeft = new Map<Parameter, number>();
  private membersLeft: number[] = [];
  private nextLaunch = 0;
  private inFlight: { bucket: number; slot: Slot; work: Work | null }[] = [];
  private allocated = 0;
  private peakLive = 0;
  private live = 0;
  private readonly gotGrad = new Set<Parameter>();

  /**
   * @param partitions one per flat group, cut into bucket-sized units
   * @param shardGrads one per group: this rank's gradient shard, accumulated into (`+=`)
   */
  constructor(
    private readonly partitions: GroupPartition[],
    private readonly comm: ProcessGroup | null,
    private readonly shardGrads: FlatBuffer[],
    private readonly opts: BucketReducerOptions,
  ) {
    const modelIndex = new Map<Parameter, number>();
    let idx = 0;
    for (const p of opts.modelOrder ?? partitions.flatMap((q) => q.group.entries.map((e) => e.param)))
      modelIndex.set(p, idx++);
    const firstIndex: number[] = [];
    partitions.forEach((p, g) => {
      p.units.forEach((u, k) => {
        const members = p.group.entries.filter((e) => e.offset < u.start + u.length && e.offset + e.size > u.start);
        this.buckets.push({
          group: g,
          unit: k,
          start: u.start,
          length: u.length,
          members: members.map((e) => e.param),
        });
        const first = Math.min(...members.map((e) => modelIndex.get(e.param) ?? Number.MAX_SAFE_INTEGER));
        firstIndex.push(members.length ? first : Number.MAX_SAFE_INTEGER);
      });
    });
    // backward produces the last parameters first: launch buckets in descending order of their first member
    const order = this.buckets.map((_, i) => i).sort((a, b) => firstIndex[b] - firstIndex[a] || b - a);
    const sorted = order.map((i) => this.buckets[i]);
    this.buckets.splice(0, this.buckets.length, ...sorted);
    partitions.forEach((p, g) => {
      for (const e of p.group.entries)
        this.where.set(e.param, { group: g, offset: e.offset, size: e.size, buckets: [] });
    });
    this.buckets.forEach((b, i) => {
      for (const m of b.members) this.where.get(m)!.buckets.push(i);
    });
    this.slots = this.buckets.map(() => null);
  }

  /** Number of buckets (one collective each per backward). */
  get count(): number {
    return this.buckets.length;
  }

  /** Bytes of bucket buffers allocated so far (they are pooled and reused). */
  get bufferBytes(): number {
    return this.allocated;
  }

  /** Most bucket buffers held at once (filling or in flight), in bytes. */
  get peakLiveBytes(): number {
    return this.peakLive;
  }

  /** Starts one backward. */
  begin(): void {
    this.usesLeft.clear();
    this.gotGrad.clear();
    this.membersLeft = this.buckets.map((b) => b.members.length);
    this.nextLaunch = 0;
  }

  onUse(p: Parameter): void {
    this.usesLeft.set(p, (this.usesLeft.get(p) ?? 0) + 1);
  }

  /** Adds one gradient of `p` (a full tensor's values) into its buckets; launches buckets it completes. */
  onGrad(p: Parameter, values: Float32Array): void {
    const w = this.where.get(p);
    if (!w) throw new ZeroFlowError(`gradient for unknown parameter "${p.name}"`);
    if (this.nextLaunch > 0 && w.buckets.some((b) => b < this.nextLaunch))
      throw new ZeroFlowError(
        `parameter "${p.name}" delivered a gradient after its bucket was reduced: it was used more times in backward than forward reported`,
      );
    this.gotGrad.add(p);
    for (const b of w.buckets) {
      const bucket = this.buckets[b];
      const dst = this.slotFor(b).buf;
      const a = Math.max(w.offset, bucket.start);
      const e = Math.min(w.offset + w.size, bucket.start + bucket.length);
      addInto(dst, a - bucket.start, values, a - w.offset, e - a, this.opts.half ?? 'bf16');
    }
    const left = (this.usesLeft.get(p) ?? 1) - 1;
    this.usesLeft.set(p, left);
    if (left !== 0) return;
    for (const b of w.buckets) this.membersLeft[b]--;
    while (this.nextLaunch < this.buckets.length && this.membersLeft[this.nextLaunch] === 0) this.launch();
    this.reap(false);
  }

  /**
   * After backward: launches every bucket not launched yet (parameters this forward did not use), then
   * waits for all reductions and adds them into the gradient shards. Returns the parameters that got no
   * gradient in this backward.
   */
  finish(): Parameter[] {
    while (this.nextLaunch < this.buckets.length) this.launch();
    this.reap(true);
    const unused: Parameter[] = [];
    for (const w of this.where.keys()) if (!this.gotGrad.has(w)) unused.push(w);
    return unused;
  }

  private slotFor(b: number): Slot {
    let s = this.slots[b];
    if (!s) {
      const L = this.buckets[b].length;
      const n = this.comm?.size ?? 1;
      const free = this.pool.get(L);
      s = free?.pop() ?? { buf: this.allocate((n + 1) * (L / n)) };
      this.slots[b] = s;
      this.live += s.buf.byteLength;
      this.peakLive = Math.max(this.peakLive, this.live);
    }
    return s;
  }

  private allocate(n: number): FlatBuffer {
    if (this.opts.half) {
      this.allocated += n * 2;
      return sharedUint16(n);
    }
    this.allocated += n * 4;
    return sharedFloat32(n);
  }

  private launch(): void {
    const b = this.nextLaunch++;
    const bucket = this.buckets[b];
    const slot = this.slotFor(b);
    this.slots[b] = null;
    const L = bucket.length;
    const comm = this.comm;
    let work: Work | null = null;
    if (comm) {
      const chunk = L / comm.size;
      const opts = dtypeOpts(slot.buf, this.opts.half ?? 'bf16');
      work = this.opts.reduceScatter
        ? comm.reduceScatter(slot.buf.subarray(L, L + chunk), slot.buf.subarray(0, L), 'sum', opts)
        : comm.allReduce(slot.buf.subarray(0, L), 'sum', opts);
    }
    this.inFlight.push({ bucket: b, slot, work });
    if (!this.opts.overlap) this.reap(true);
    else while (this.inFlight.length > this.opts.maxInFlight) this.complete(this.inFlight.shift()!);
  }

  /** Completes finished reductions (all of them when `all`), oldest first. */
  private reap(all: boolean): void {
    while (this.inFlight.length > 0 && (all || (this.inFlight[0].work?.isCompleted() ?? true)))
      this.complete(this.inFlight.shift()!);
  }

  private complete(x: { bucket: number; slot: Slot; work: Work | null }): void {
    x.work?.wait();
    const bucket = this.buckets[x.bucket];
    const p = this.partitions[bucket.group];
    const range = p.ranges[bucket.unit];
    const L = bucket.length;
    const n = p.dpSize;
    const chunk = L / n;
    // reduce-scatter leaves the chunk after the input; all-reduce (or a single rank) leaves it in place
    const src =
      this.comm && this.opts.reduceScatter
        ? x.slot.buf.subarray(L, L + chunk)
        : x.slot.buf.subarray(p.rank * chunk, (p.rank + 1) * chunk);
    addInto(this.shardGrads[bucket.group], range.shardStart, src, 0, chunk, this.opts.half ?? 'bf16');
    x.slot.buf.fill(0);
    const free = this.pool.get(L) ?? [];
    free.push(x.slot);
    this.pool.set(L, free);
    this.live -= x.slot.buf.byteLength;
  }
}
