/**
 * Gradients reduce-scattered straight into each rank's shard while backward runs (ZeRO stage 3).
 *
 * Parameters are grouped, in backward order (reverse model order), into buckets of about
 * `reduce_bucket_size` elements. A bucket's buffer holds N blocks; block q is the concatenation of chunk q
 * of every member's gradient, so one reduce-scatter leaves rank r the sum of its own chunks, which it adds
 * into its gradient shard (DeepSpeed's stage-3 `__reduce_and_partition_ipg_grads` does the same
 * interleaving). Buckets are launched strictly in order, each as soon as all its members' gradients are
 * complete (every use counted in forward delivered, so tied weights count twice), so every rank issues the
 * same collectives in the same order. Bucket buffers are pooled: a rank never holds a full gradient.
 *
 * Mixed precision (`half`): bucket buffers hold 16-bit gradients (each gradient added with one rounding, as
 * stage 2's buckets and a 16-bit `+=` in PyTorch) and are reduce-scattered as 16-bit data, half of fp32's
 * bytes; the reduced chunks are added into the gradient shards, 16-bit or fp32 (`grad_accum_dtype`).
 */
import {
  addInto,
  dtypeOpts,
  type FlatBuffer,
  type HalfFormat,
  type Parameter,
  type ProcessGroup,
  sharedFloat32,
  sharedUint16,
  type Work,
  ZeroFlowError,
} from '@zeroflow/core';
import type { ParamSlot } from './layout.js';

interface Bucket {
  members: ParamSlot[];
  /** Offset of each member's chunk inside one block. */
  offsets: number[];
  /** Elements of one block (sum of the members' chunks). */
  block: number;
}

/** Launched, unfinished reductions at once (overlap with the rest of backward). */
const MAX_IN_FLIGHT = 2;

/** Reduces full per-parameter gradients into this rank's gradient shards, bucket by bucket. */
export class ShardGradientReducer {
  private readonly buckets: Bucket[] = [];
  private readonly bucketOf = new Map<Parameter, number>();
  private readonly slotBufs: (FlatBuffer | null)[];
  private readonly pool: FlatBuffer[] = [];
  private readonly usesLeft = new Map<Parameter, number>();
  private readonly gotGrad = new Set<Parameter>();
  private membersLeft: number[] = [];
  private nextLaunch = 0;
  private inFlight: { bucket: number; buf: FlatBuffer; work: Work | null }[] = [];
  private readonly capacity: number;
  private allocated = 0;

  /**
   * @param slots parameters in model order
   * @param shardGrads one per param group: this rank's gradient shard (fp32, or 16-bit of `half`),
   *   accumulated into (`+=`)
   * @param half amp: buckets hold, and the wire carries, 16-bit gradients of this format
   */
  constructor(
    slots: readonly ParamSlot[],
    private readonly comm: ProcessGroup | null,
    private readonly shardGrads: FlatBuffer[],
    bucketElements: number,
    private readonly overlap: boolean,
    private readonly half: HalfFormat | null = null,
  ) {
    const n = comm?.size ?? 1;
    let cur: Bucket | null = null;
    for (const s of [...slots].reverse()) {
      if (!s.param.requiresGrad) continue;
      if (!cur || (cur.block > 0 && (cur.block + s.chunk) * n > bucketElements)) {
        cur = { members: [], offsets: [], block: 0 };
        this.buckets.push(cur);
      }
      cur.members.push(s);
      cur.offsets.push(cur.block);
      cur.block += s.chunk;
      this.bucketOf.set(s.param, this.buckets.length - 1);
    }
    this.capacity = Math.max(0, ...this.buckets.map((b) => b.block)) * (n + 1);
    this.slotBufs = this.buckets.map(() => null);
  }

  /** Number of buckets (one reduce-scatter each per backward). */
  get count(): number {
    return this.buckets.length;
  }

  /** Bytes of pooled bucket buffers allocated so far. */
  get bufferBytes(): number {
    return this.allocated;
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

  /** Adds one gradient of `p` (full values) into its bucket; launches the buckets that are complete. */
  onGrad(p: Parameter, values: Float32Array): void {
    const b = this.bucketOf.get(p);
    if (b === undefined) throw new ZeroFlowError(`gradient for unknown parameter "${p.name}"`);
    if (b < this.nextLaunch)
      throw new ZeroFlowError(
        `parameter "${p.name}" delivered a gradient after its bucket was reduced: it was used more times in backward than forward reported`,
      );
    this.gotGrad.add(p);
    const bucket = this.buckets[b];
    const k = bucket.members.findIndex((m) => m.param === p);
    const { chunk } = bucket.members[k];
    const buf = this.bufFor(b);
    const n = this.comm?.size ?? 1;
    for (let q = 0; q < n; q++) {
      const start = q * chunk;
      const end = Math.min(values.length, start + chunk);
      addInto(buf, q * bucket.block + bucket.offsets[k], values, start, end - start, this.half ?? 'bf16');
    }
    const left = (this.usesLeft.get(p) ?? 1) - 1;
    this.usesLeft.set(p, left);
    if (left !== 0) return;
    this.membersLeft[b]--;
    while (this.nextLaunch < this.buckets.length && this.membersLeft[this.nextLaunch] === 0) this.launch();
    this.reap(false);
  }

  /** After backward: launches the rest, waits for all; returns parameters that got no gradient. */
  finish(): Parameter[] {
    while (this.nextLaunch < this.buckets.length) this.launch();
    this.reap(true);
    const unused: Parameter[] = [];
    for (const p of this.bucketOf.keys()) if (!this.gotGrad.has(p)) unused.push(p);
    return unused;
  }

  private bufFor(b: number): FlatBuffer {
    let buf = this.slotBufs[b];
    if (!buf) {
      buf = this.pool.pop() ?? this.allocate();
      this.slotBufs[b] = buf;
    }
    return buf;
  }

  private allocate(): FlatBuffer {
    this.allocated += this.capacity * (this.half ? 2 : 4);
    return this.half ? sharedUint16(this.capacity) : sharedFloat32(this.capacity);
  }

  private launch(): void {
    const b = this.nextLaunch++;
    const buf = this.bufFor(b);
    this.slotBufs[b] = null;
    const n = this.comm?.size ?? 1;
    const L = this.buckets[b].block;
    const out = buf.subarray(n * L, (n + 1) * L);
    const work = this.comm
      ? this.half
        ? this.comm.reduceScatter(out, buf.subarray(0, n * L), 'sum', dtypeOpts(out, this.half))
        : this.comm.reduceScatter(out, buf.subarray(0, n * L), 'sum')
      : null;
    this.inFlight.push({ bucket: b, buf, work });
    if (!this.overlap) this.reap(true);
    else while (this.inFlight.length > MAX_IN_FLIGHT) this.complete(this.inFlight.shift()!);
  }

  private reap(all: boolean): void {
    while (this.inFlight.length > 0 && (all || (this.inFlight[0].work?.isCompleted() ?? true)))
      this.complete(this.inFlight.shift()!);
  }

  private complete(x: { bucket: number; buf: FlatBuffer; work: Work | null }): void {
    x.work?.wait();
    const bucket = this.buckets[x.bucket];
    const n = this.comm?.size ?? 1;
    const L = bucket.block;
    // reduce-scatter leaves this rank's block after the input; a single rank's block is block 0
    const reduced = this.comm ? x.buf.subarray(n * L, (n + 1) * L) : x.buf.subarray(0, L);
    bucket.members.forEach((m, k) => {
      addInto(this.shardGrads[m.group], m.shardOffset, reduced, bucket.offsets[k], m.chunk, this.half ?? 'bf16');
    });
    x.buf.fill(0);
    this.pool.push(x.buf);
  }
}
