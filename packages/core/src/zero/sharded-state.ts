/**
 * Checkpoint state of a partitioned optimizer: each rank saves only its shard of the optimizer state
 * (DESIGN.md section 8), with metadata that describes the partition so that a loader can reshard.
 */
import { CheckpointError } from '../errors.js';
import type { FlatOptimizer, ParamGroupOptions } from '../optim/types.js';
import type { OwnerState } from '../plugin.js';
import { type GroupPartition, type PartitionMeta, partitionMeta } from './partition.js';

/** The `meta` of a ZeRO owner's state (the manifest's `owner` entry; the same on every rank). */
export interface ShardedOwnerMeta {
  [key: string]: unknown;
  /** Partitioned: every rank writes its own file. */
  replicated: false;
  zeroStage: number;
  /** Optimizer type (`AdamW`, ...). */
  type: string;
  groups: { options: ParamGroupOptions; step: number; buffers: string[] }[];
  /** How each flat group is split between ranks; tensor `optimizer.group{i}.{buffer}` of rank r is its shard. */
  partitions: PartitionMeta[];
}

/** This rank's optimizer shard as an OwnerState (tensors `optimizer.group{i}.{buffer}`, one per state buffer). */
export function shardedStateDict(
  optimizer: FlatOptimizer,
  partitions: GroupPartition[],
  zeroStage: number,
): OwnerState {
  const sd = optimizer.stateDict();
  const tensors: OwnerState['tensors'] = {};
  sd.groups.forEach((g, i) => {
    for (const [k, v] of Object.entries(g.buffers))
      tensors[`optimizer.group${i}.${k}`] = { shape: [v.length], data: v };
  });
  const meta: ShardedOwnerMeta = {
    replicated: false,
    zeroStage,
    type: sd.type,
    groups: sd.groups.map((g) => ({ options: g.options, step: g.step, buffers: Object.keys(g.buffers) })),
    partitions: partitions.map(partitionMeta),
  };
  return { tensors, meta };
}

function samePartition(a: PartitionMeta, b: PartitionMeta): boolean {
  return (
    a.size === b.size &&
    a.paddedSize === b.paddedSize &&
    a.dpSize === b.dpSize &&
    a.shardSize === b.shardSize &&
    JSON.stringify(a.units) === JSON.stringify(b.units) &&
    JSON.stringify(a.entries) === JSON.stringify(b.entries)
  );
}

/**
 * Loads this rank's optimizer shard saved by {@link shardedStateDict}. The saved partition must match this
 * run's (same data-parallel size, stage and bucket layout); otherwise the error says what differs.
 */
export function loadShardedStateDict(
  optimizer: FlatOptimizer,
  partitions: GroupPartition[],
  zeroStage: number,
  state: OwnerState,
): void {
  const meta = state.meta as Partial<ShardedOwnerMeta>;
  if (meta.replicated !== false || !Array.isArray(meta.partitions) || !Array.isArray(meta.groups)) {
    throw new CheckpointError(
      `this checkpoint's optimizer state was not saved by a ZeRO stage ${zeroStage} owner (no partition metadata)`,
    );
  }
  if (meta.zeroStage !== zeroStage)
    throw new CheckpointError(`optimizer state saved at ZeRO stage ${meta.zeroStage}, loading at stage ${zeroStage}`);
  const mine = partitions.map(partitionMeta);
  if (meta.partitions.length !== mine.length || meta.partitions.some((p, i) => !samePartition(p, mine[i]))) {
    const d = (p: PartitionMeta[]) =>
      p.map((x) => `${x.size}/${x.dpSize}x${x.shardSize} in ${x.units.length} units`).join(', ');
    throw new CheckpointError(
      `optimizer state was partitioned as [${d(meta.partitions)}], this run as [${d(mine)}]: loading needs resharding (different data-parallel size, model or bucket size), which is not implemented yet`,
    );
  }
  optimizer.loadStateDict({
    type: meta.type ?? optimizer.type,
    groups: meta.groups.map((g, i) => ({
      options: g.options,
      step: g.step,
      buffers: Object.fromEntries(
        g.buffers.map((k) => {
          const t = state.tensors[`optimizer.group${i}.${k}`];
          if (!t) throw new CheckpointError(`optimizer state is missing optimizer.group${i}.${k}`);
          if (t.data.length !== partitions[i].shardSize)
            throw new CheckpointError(
              `optimizer.group${i}.${k} has ${t.data.length} elements; this rank's shard has ${partitions[i].shardSize}`,
            );
          return [k, t.data];
        }),
      ),
    })),
  });
}
