/**
 * How ZeRO stages 1-3 split a flat parameter group between data-parallel ranks (DESIGN.md section 6).
 *
 * A flat group (parameters back to back in model order, padded to a multiple of the data-parallel size N)
 * is cut into consecutive *ownership units*, each a multiple of N long. Rank r owns the r-th of the N equal
 * chunks of every unit; its *shard* is the concatenation of its chunks, in unit order.
 *
 * - One unit per group (stage 1): rank r owns one contiguous slice of the flat buffer, so the optimizer
 *   steps a zero-copy view of it, and one reduce-scatter of the whole buffer leaves each rank its slice.
 * - Bucket-sized units (stage 2): every gradient bucket is itself N equal chunks, so a bucket can be
 *   reduce-scattered (a true reduce-scatter, not an all-reduce) the moment backward completes it. A
 *   contiguous slice per rank cannot give this: a bucket inside one rank's slice would need a `reduce`,
 *   and equal-block reduce-scatters over contiguous slices need data from every slice, i.e. all of backward.
 *
 * Everything a checkpoint loader needs to reshard (group sizes, padded sizes, unit boundaries, this rank's
 * ranges) is in {@link partitionMeta}.
 */

import type { FlatGroup } from '../engine/flat-params.js';
import { ZeroFlowError } from '../errors.js';
import type { FlatSegment } from '../optim/types.js';

/** One contiguous piece of a rank's shard and where it sits in the flat group. */
export interface ShardRange {
  /** Offset in the flat group buffer. */
  flatStart: number;
  /** Offset in this rank's shard. */
  shardStart: number;
  length: number;
}

/** An ownership unit: `[start, start + length)` of the flat group, `length` a multiple of the DP size. */
export interface OwnershipUnit {
  start: number;
  length: number;
}

/** One flat group split between `dpSize` ranks, seen from rank `rank`. */
export interface GroupPartition {
  group: FlatGroup;
  dpSize: number;
  rank: number;
  units: OwnershipUnit[];
  /** Elements of every rank's shard: `group.paddedSize / dpSize`. */
  shardSize: number;
  /** This rank's chunks, in shard order (one per unit). */
  ranges: ShardRange[];
}

function build(group: FlatGroup, dpSize: number, rank: number, units: OwnershipUnit[]): GroupPartition {
  if (group.paddedSize % dpSize !== 0) {
    throw new ZeroFlowError(
      `flat group ${group.index} has ${group.paddedSize} elements, not a multiple of the data-parallel size ${dpSize}: lay it out with layoutFlatGroups(params, groups, ${dpSize})`,
    );
  }
  const ranges: ShardRange[] = [];
  let shardStart = 0;
  for (const u of units) {
    const chunk = u.length / dpSize;
    ranges.push({ flatStart: u.start + rank * chunk, shardStart, length: chunk });
    shardStart += chunk;
  }
  return { group, dpSize, rank, units, shardSize: group.paddedSize / dpSize, ranges };
}

/** Rank `rank` owns one contiguous slice `[rank * P/N, (rank + 1) * P/N)` of the group (ZeRO stage 1). */
export function partitionContiguous(group: FlatGroup, dpSize: number, rank: number): GroupPartition {
  return build(group, dpSize, rank, group.paddedSize > 0 ? [{ start: 0, length: group.paddedSize }] : []);
}

/**
 * The group cut into units of `unitElements` (rounded down to a multiple of `dpSize`, at least `dpSize`);
 * the last unit is shorter. Rank `rank` owns chunk `rank` of each (ZeRO stage 2: one unit = one bucket).
 */
export function partitionByUnits(group: FlatGroup, dpSize: number, rank: number, unitElements: number): GroupPartition {
  const unit = Math.max(dpSize, Math.floor(unitElements / dpSize) * dpSize);
  const units: OwnershipUnit[] = [];
  for (let start = 0; start < group.paddedSize; start += unit)
    units.push({ start, length: Math.min(unit, group.paddedSize - start) });
  return build(group, dpSize, rank, units);
}

/** Name of the segments that cover padding (no parameter lives there). */
export const PADDING_SEGMENT = '<padding>';

/**
 * Segments of this rank's shard, in shard coordinates, covering `[0, shardSize)` without gaps: one per
 * piece of a parameter inside a chunk, and `<padding>` for the padded tail (Lamb checks full coverage).
 */
export function shardSegments(p: GroupPartition): FlatSegment[] {
  const out: FlatSegment[] = [];
  for (const r of p.ranges) {
    let cursor = r.flatStart;
    const end = r.flatStart + r.length;
    for (const e of p.group.entries) {
      const a = Math.max(e.offset, cursor);
      const b = Math.min(e.offset + e.size, end);
      if (b <= a) continue;
      if (a > cursor)
        out.push({ name: PADDING_SEGMENT, offset: r.shardStart + cursor - r.flatStart, length: a - cursor });
      out.push({ name: e.name, offset: r.shardStart + a - r.flatStart, length: b - a });
      cursor = b;
    }
    if (cursor < end)
      out.push({ name: PADDING_SEGMENT, offset: r.shardStart + cursor - r.flatStart, length: end - cursor });
  }
  return out;
}

/** Copies this rank's chunks of `flat` (a full group buffer) into `shard`. */
export function gatherShard(p: GroupPartition, flat: Float32Array, shard: Float32Array): void {
  for (const r of p.ranges) shard.set(flat.subarray(r.flatStart, r.flatStart + r.length), r.shardStart);
}

/** True when the shard is one contiguous slice of the flat buffer (so it can be a zero-copy view). */
export function isContiguous(p: GroupPartition): boolean {
  return p.ranges.every((r, i) => i === 0 || r.flatStart === p.ranges[i - 1].flatStart + p.ranges[i - 1].length);
}

/** The view of a contiguous shard inside `flat` (see {@link isContiguous}). */
export function contiguousShardView(p: GroupPartition, flat: Float32Array): Float32Array {
  if (!isContiguous(p)) throw new ZeroFlowError('this partition is not one contiguous slice');
  const start = p.ranges[0]?.flatStart ?? 0;
  return flat.subarray(start, start + p.shardSize);
}

/**
 * JSON description of a partition, the same on every rank (checkpoint manifests keep one copy): with it a
 * loader maps element `i` of rank `r`'s shard back to the flat group, so it can reshard to any world size.
 * Rank r's shard is chunk r (`length / dpSize` elements from `start + r * length / dpSize`) of every unit,
 * concatenated in unit order.
 */
export interface PartitionMeta {
  group: number;
  /** Sum of parameter sizes. */
  size: number;
  /** `size` padded to a multiple of `dpSize`. */
  paddedSize: number;
  dpSize: number;
  /** Elements of each rank's shard. */
  shardSize: number;
  /** Ownership units `[start, length]` in the flat group. */
  units: [number, number][];
  /** Parameters of the group in flat order: `[name, offset, size]`. */
  entries: [string, number, number][];
}

/** The checkpoint metadata of a partition. */
export function partitionMeta(p: GroupPartition): PartitionMeta {
  return {
    group: p.group.index,
    size: p.group.size,
    paddedSize: p.group.paddedSize,
    dpSize: p.dpSize,
    shardSize: p.shardSize,
    units: p.units.map((u) => [u.start, u.length]),
    entries: p.group.entries.map((e) => [e.name, e.offset, e.size]),
  };
}

/** Rank `rank`'s chunks `[flatStart, shardStart, length]` under a recorded partition (for resharding). */
export function rangesFromMeta(meta: PartitionMeta, rank: number): ShardRange[] {
  let shardStart = 0;
  return meta.units.map(([start, length]) => {
    const chunk = length / meta.dpSize;
    const r = { flatStart: start + rank * chunk, shardStart, length: chunk };
    shardStart += chunk;
    return r;
  });
}
