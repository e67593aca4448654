/**
 * Collectives over ZeRO partitions (DESIGN.md section 6): the reduce-scatter that leaves each rank its
 * reduced shard, the all-gather that rebuilds full parameters from the updated shards, and the global
 * gradient norm. Buffers passed to a backend are SharedArrayBuffer views where this code allocates them
 * (the tcp backend then skips its staging copies).
 */
import type { CollectiveOptions, ProcessGroup, Work } from '../comm/types.js';
import { ZeroFlowError } from '../errors.js';
import { scaleFlat, scaleSumOfSquares } from '../optim/flat-loops.js';
import type { GroupPartition } from './partition.js';

/** A Float32Array in shared memory. */
export function sharedFloat32(n: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(Math.max(0, n) * 4));
}

/** fp32 or 16-bit (bit patterns) data of a ZeRO collective. */
export type FloatBuffer = Float32Array | Uint16Array;

/**
 * Two staging buffers reused by the chunked collectives over contiguous partitions: chunk i is packed into
 * buffer i % 2 while chunk i - 1 is on the wire. Allocated on first use, sized for the largest chunk; fp32
 * unless `make` allocates 16-bit buffers (mixed precision puts 16-bit data on the wire).
 */
export class StagingBuffers<B extends FloatBuffer = Float32Array> {
  private readonly bufs: B[] = [];

  constructor(
    private readonly elements: number,
    private readonly make: (n: number) => B = sharedFloat32 as unknown as (n: number) => B,
  ) {}

  get(i: number): B {
    const k = i % 2;
    this.bufs[k] ??= this.make(this.elements);
    return this.bufs[k];
  }

  /** Bytes currently allocated. */
  get bytes(): number {
    return this.bufs.reduce((a, b) => a + b.byteLength, 0);
  }
}

/** Elements per rank per collective: `bucketElements / N` (at least 1), at most the shard. */
export function chunkPerRank(bucketElements: number, dpSize: number, shardSize: number): number {
  return Math.max(1, Math.min(shardSize, Math.floor(bucketElements / dpSize)));
}

/**
 * Sums the full flat gradient `flat` of a contiguous partition over the group and leaves rank r's reduced
 * slice in place (`flat[r*S, (r+1)*S)`; the other slices are left partly reduced and must not be read).
 * With `reduceScatter` (default) each chunk of `chunk` elements per rank is packed from the N slices into a
 * staging buffer and reduce-scattered: every rank sends and receives (N-1)/N of the data once. Without it
 * (DeepSpeed's `reduce_scatter: false`) the whole buffer is all-reduced in place, twice the traffic.
 */
export function reduceScatterContiguous<B extends FloatBuffer>(
  comm: ProcessGroup,
  p: GroupPartition,
  flat: B,
  chunk: number,
  staging: StagingBuffers<B>,
  reduceScatter = true,
  opts?: CollectiveOptions,
): void {
  const n = p.dpSize;
  const S = p.shardSize;
  if (S === 0) return;
  if (!reduceScatter) {
    const works: Work[] = [];
    for (let off = 0; off < flat.length; off += chunk * n)
      works.push(comm.allReduce(flat.subarray(off, Math.min(flat.length, off + chunk * n)), 'sum', opts));
    for (const w of works) w.wait();
    return;
  }
  const pending: Work[] = [];
  let i = 0;
  for (let off = 0; off < S; off += chunk, i++) {
    const len = Math.min(chunk, S - off);
    if (i >= 2) pending[i - 2].wait();
    const buf = staging.get(i);
    for (let q = 0; q < n; q++) buf.set(flat.subarray(q * S + off, q * S + off + len), q * len);
    const out = flat.subarray(p.rank * S + off, p.rank * S + off + len);
    pending.push(comm.reduceScatter(out, buf.subarray(0, n * len), 'sum', opts));
  }
  for (const w of pending) w.wait();
}

/**
 * Rebuilds the full flat parameters of a contiguous partition from every rank's slice, in chunks of
 * `chunk` elements per rank (`allgather_bucket_size / N`): each chunk is all-gathered into a staging buffer
 * and copied to its N places. With `useBroadcast` (DeepSpeed's `allgather_partitions: false`) each rank's
 * slice is broadcast from its owner instead.
 */
export function allGatherContiguous<B extends FloatBuffer>(
  comm: ProcessGroup,
  p: GroupPartition,
  flat: B,
  chunk: number,
  staging: StagingBuffers<B>,
  useBroadcast = false,
  opts?: CollectiveOptions,
): void {
  const n = p.dpSize;
  const S = p.shardSize;
  if (S === 0) return;
  if (useBroadcast) {
    const works: Work[] = [];
    for (let q = 0; q < n; q++) works.push(comm.broadcast(flat.subarray(q * S, (q + 1) * S), q, opts));
    for (const w of works) w.wait();
    return;
  }
  const pending: { work: Work; buf: FloatBuffer; off: number; len: number }[] = [];
  const finish = (x: (typeof pending)[number]) => {
    x.work.wait();
    for (let q = 0; q < n; q++) {
      if (q !== p.rank) flat.set(x.buf.subarray(q * x.len, (q + 1) * x.len), q * S + x.off);
    }
  };
  let i = 0;
  for (let off = 0; off < S; off += chunk, i++) {
    const len = Math.min(chunk, S - off);
    if (i >= 2) finish(pending[i - 2]);
    const buf = staging.get(i).subarray(0, n * len);
    const input = flat.subarray(p.rank * S + off, p.rank * S + off + len);
    pending.push({ work: comm.allGather(buf, input, opts), buf, off, len });
  }
  for (let k = Math.max(0, i - 2); k < pending.length; k++) finish(pending[k]);
}

/**
 * Rebuilds the full flat parameters of a unit partition: each unit `[start, start + length)` of `flat` is
 * the all-gather of every rank's chunk, so it is gathered straight into place from this rank's `shard`.
 * At most `maxInFlight` elements are in flight (`allgather_bucket_size`). With `useBroadcast` each chunk is
 * broadcast from its owner instead (`allgather_partitions: false`).
 */
export function allGatherUnits<B extends FloatBuffer>(
  comm: ProcessGroup,
  p: GroupPartition,
  shard: B,
  flat: B,
  maxInFlight: number,
  useBroadcast = false,
  opts?: CollectiveOptions,
): void {
  const n = p.dpSize;
  const pending: { work: Work; elements: number }[] = [];
  let inFlight = 0;
  p.units.forEach((u, k) => {
    while (pending.length > 0 && inFlight + u.length > maxInFlight) {
      const done = pending.shift()!;
      done.work.wait();
      inFlight -= done.elements;
    }
    const r = p.ranges[k];
    const out = flat.subarray(u.start, u.start + u.length);
    if (useBroadcast) {
      out.set(shard.subarray(r.shardStart, r.shardStart + r.length), p.rank * r.length);
      for (let q = 0; q < n; q++)
        pending.push({ work: comm.broadcast(out.subarray(q * r.length, (q + 1) * r.length), q, opts), elements: 0 });
      pending[pending.length - 1].elements = u.length;
    } else {
      pending.push({
        work: comm.allGather(out, shard.subarray(r.shardStart, r.shardStart + r.length), opts),
        elements: u.length,
      });
    }
    inFlight += u.length;
  });
  for (const x of pending) x.work.wait();
}

/**
 * The global L2 norm from each rank's sum of squares over its own shard: the partial sums are all-gathered
 * as float32 pairs (high part, rounding remainder) and added in rank order in float64, so every rank gets
 * the same value, equal to a float64 sum to ~1e-14 relative.
 */
export function globalNorm(comm: ProcessGroup | null, localSumOfSquares: number): number {
  if (!comm || comm.size === 1) return Math.sqrt(localSumOfSquares);
  const hi = Math.fround(localSumOfSquares);
  const mine = Float32Array.of(hi, Math.fround(localSumOfSquares - hi));
  const all = new Float32Array(2 * comm.size);
  comm.allGather(all, mine).wait();
  let s = 0;
  for (let i = 0; i < all.length; i++) s += all[i];
  return Math.sqrt(s);
}

/**
 * The gradient preprocessing of every owner's step, as DeepSpeed does it: divide the gradients by `divisor`
 * (loss scale x data-parallel size) in place, take their global L2 norm (`comm`: each rank holds a disjoint
 * share, summed across ranks; null: the gradients are whole here) and clip them in place to `clipNorm`
 * (0: off). `skipped` when `skip(norm)` says so or the norm is not finite: the caller then drops the
 * gradients without stepping. With `deferClip` the gradients are not clipped here: `clipScale` (1 when no
 * clipping is needed) is for the optimizer's `FlatGroupBuffers.gradScale`, which saves a pass over them.
 */
export function unscaleAndClip(
  grads: Float32Array[],
  comm: ProcessGroup | null,
  opts: { divisor: number; clipNorm: number; skip?: (gradNorm: number) => boolean; deferClip?: boolean },
): { gradNorm: number; skipped: boolean; clipScale: number } {
  const inv = 1 / opts.divisor;
  // one pass per group: scale (unless inv is 1), then sum the squares of the stored fp32 values, in the
  // fixed block/lane order of scaleSumOfSquares (native when installed, same bits)
  let sq = 0;
  for (const g of grads) sq += scaleSumOfSquares(g, inv);
  const gradNorm = globalNorm(comm, sq);
  if (opts.skip?.(gradNorm) || !Number.isFinite(gradNorm)) return { gradNorm, skipped: true, clipScale: 1 };
  if (opts.clipNorm > 0 && gradNorm > opts.clipNorm) {
    const c = opts.clipNorm / (gradNorm + 1e-6);
    if (opts.deferClip) return { gradNorm, skipped: false, clipScale: c };
    for (const g of grads) scaleFlat(g, c);
  }
  return { gradNorm, skipped: false, clipScale: 1 };
}

/** The data-parallel group of a ZeRO owner: the world group while ZeroFlow has no TP/PP sub-groups here. */
export function dataParallelGroup(
  comm: ProcessGroup | null | undefined,
  dpSize: number,
  what: string,
): ProcessGroup | null {
  if (dpSize <= 1) return null;
  if (!comm)
    throw new ZeroFlowError(
      `${what}: data_parallel_size is ${dpSize} but no plugin provides the "comm" service: add a comm backend (@zeroflow/comm-shm or @zeroflow/comm-tcp)`,
    );
  if (comm.size !== dpSize)
    throw new ZeroFlowError(
      `${what}: the comm group has ${comm.size} ranks but data_parallel_size is ${dpSize}; ZeRO over a data-parallel sub-group (with tensor or pipeline parallelism) is not supported yet`,
    );
  return comm;
}
