/**
 * Resharding of optimizer state between ZeRO layouts (DESIGN.md section 8): a checkpoint saved at one
 * (data-parallel size, stage 0-3) loads at another. The saved shards of every rank are assembled into the
 * FULL optimizer state of each param group, keyed by parameter name, and then sliced into the loading
 * owner's layout, as the tensors and meta that owner's `loadStateDict` would get from its own checkpoint.
 *
 * Every layout is described by {@link PartitionMeta}s, one per flat param group. A stage-0 (replicated)
 * layout is the degenerate partition: `dpSize` 1, one unit covering the unpadded group. ZeRO-3 layouts
 * (one unit per parameter) are PartitionMetas too, so stage 3 reshards to and from any other stage; a
 * stage-3 owner also gets its parameter shard (`params.group{i}`) cut from the full weights the same way.
 */
import * as path from 'node:path';
import type { CheckpointManifest } from '../engine/checkpoint.js';
import { CheckpointError } from '../errors.js';
import { readSafetensorsFile } from '../io/safetensors.js';
import type { ParamGroupOptions } from '../optim/types.js';
import type { OwnerState } from '../plugin.js';
import { type PartitionMeta, rangesFromMeta } from './partition.js';
import type { ShardedOwnerMeta } from './sharded-state.js';

/** One param group's full optimizer state: every state buffer of every parameter, by parameter name. */
export interface FullOptimizerGroup {
  options: ParamGroupOptions;
  step: number;
  /** State buffer names (`exp_avg`, `exp_avg_sq`, `momentum_buffer` ...), in saved order. */
  buffers: string[];
  /** Parameter name -> buffer name -> that parameter's slice of the buffer (its own copy). */
  byParam: Map<string, Record<string, Float32Array>>;
}

/** The optimizer state of a checkpoint, independent of how it was partitioned. */
export interface FullOptimizerState {
  type: string;
  groups: FullOptimizerGroup[];
}

/** Where a loading owner wants its state: its layout and its place in it. */
export interface TargetLayout {
  /** The owner's stage: 0 gives stage-0 meta (`{type, groups}`), 1-2 give {@link ShardedOwnerMeta}. */
  zeroStage: number;
  /** The owner's partition of each flat group (for stage 0, see {@link replicatedLayout}). */
  partitions: PartitionMeta[];
  /** This rank's data-parallel rank (0 for stage 0). */
  dpRank: number;
  /**
   * Full fp32 parameter values by name, for an owner that keeps its own parameter shard (ZeRO-3): the state
   * then also holds `params.group{i}`, this rank's shard of the weights in the same layout as the optimizer
   * state. Absent for owners whose parameters are whole (stages 0-2).
   */
  parameters?: ReadonlyMap<string, Float32Array>;
}

/** The saved meta of an owner's optimizer state, stage 0 or sharded (only the fields read here). */
interface SavedOwnerMeta {
  type?: string;
  replicated?: boolean;
  zeroStage?: number;
  groups?: { options: ParamGroupOptions; step: number; buffers: string[] }[];
  partitions?: PartitionMeta[];
}

/**
 * The stage-0 layout of param groups: each group whole and unpadded, as one unit of a 1-rank partition.
 * `sizes` gives each parameter's element count.
 */
export function replicatedLayout(
  groups: readonly { names: readonly string[] }[],
  sizes: ReadonlyMap<string, number>,
): PartitionMeta[] {
  return groups.map((g, index) => {
    const entries: [string, number, number][] = [];
    let offset = 0;
    for (const name of g.names) {
      const size = sizes.get(name);
      if (size === undefined) throw new CheckpointError(`param group ${index} names unknown parameter "${name}"`);
      entries.push([name, offset, size]);
      offset += size;
    }
    return {
      group: index,
      size: offset,
      paddedSize: offset,
      dpSize: 1,
      shardSize: offset,
      units: offset > 0 ? [[0, offset]] : [],
      entries,
    };
  });
}

/**
 * The layout a checkpoint was saved in: the manifest's partitions (stages 1-2), or for stage-0 state that
 * does not record them, the replicated layout of `fallbackGroups` (the loading engine's param groups,
 * which group the same model by the same rule).
 */
export function savedLayout(manifest: CheckpointManifest, fallbackGroups?: PartitionMeta[]): PartitionMeta[] {
  const meta = manifest.owner as SavedOwnerMeta;
  if (Array.isArray(meta.partitions)) return meta.partitions;
  if (!fallbackGroups) {
    throw new CheckpointError(
      `checkpoint "${manifest.tag}" (ZeRO stage ${manifest.world.zeroStage}) does not record its param group layout`,
    );
  }
  return fallbackGroups;
}

/**
 * Assembles the full optimizer state from the shards of every rank. `readShard(r)` returns the owner
 * tensors of data-parallel rank r (called once per rank that holds a shard: only rank 0 for a replicated
 * layout). Each shard's chunks go back to their place in the flat group; padding is dropped.
 */
export function assembleFullOptimizerState(
  meta: Record<string, unknown>,
  layout: PartitionMeta[],
  readShard: (dpRank: number) => OwnerState['tensors'],
): FullOptimizerState {
  const saved = meta as SavedOwnerMeta;
  if (!Array.isArray(saved.groups) || typeof saved.type !== 'string') {
    throw new CheckpointError('the checkpoint has no optimizer state metadata (type, groups)');
  }
  if (saved.groups.length !== layout.length) {
    throw new CheckpointError(
      `optimizer state has ${saved.groups.length} param groups, the layout describes ${layout.length}`,
    );
  }
  const dpSize = layout.reduce((d, p) => Math.max(d, p.dpSize), 1);
  const shards = Array.from({ length: dpSize }, (_, r) => readShard(r));
  const groups = saved.groups.map((g, i): FullOptimizerGroup => {
    const part = layout[i];
    const flat: Record<string, Float32Array> = {};
    for (const buffer of g.buffers) {
      const full = new Float32Array(part.paddedSize);
      for (let r = 0; r < part.dpSize; r++) {
        const key = `optimizer.group${i}.${buffer}`;
        const t = shards[r][key];
        if (!t) throw new CheckpointError(`the optimizer state of data-parallel rank ${r} lacks ${key}`);
        if (t.data.length !== part.shardSize) {
          throw new CheckpointError(
            `${key} of data-parallel rank ${r} has ${t.data.length} elements; its partition says ${part.shardSize}`,
          );
        }
        for (const range of rangesFromMeta(part, r)) {
          full.set(t.data.subarray(range.shardStart, range.shardStart + range.length), range.flatStart);
        }
      }
      flat[buffer] = full;
    }
    const byParam = new Map<string, Record<string, Float32Array>>();
    for (const [name, offset, size] of part.entries) {
      const slices: Record<string, Float32Array> = {};
      for (const buffer of g.buffers) slices[buffer] = flat[buffer].slice(offset, offset + size);
      byParam.set(name, slices);
    }
    return { options: g.options, step: g.step, buffers: [...g.buffers], byParam };
  });
  return { type: saved.type, groups };
}

/**
 * The state a loading owner would have saved itself: each buffer laid out by the target's flat groups
 * (parameters found by name, padding zero) and cut to the target rank's shard; the meta of its stage.
 */
export function sliceOptimizerState(full: FullOptimizerState, target: TargetLayout): OwnerState {
  if (full.groups.length !== target.partitions.length) {
    throw new CheckpointError(
      `the checkpoint has ${full.groups.length} param groups, the loading run ${target.partitions.length}`,
    );
  }
  const tensors: OwnerState['tensors'] = {};
  target.partitions.forEach((part, i) => {
    const group = full.groups[i];
    const names = new Set(part.entries.map(([name]) => name));
    const extra = [...group.byParam.keys()].filter((n) => !names.has(n));
    const missing = [...names].filter((n) => !group.byParam.has(n));
    if (extra.length || missing.length) {
      throw new CheckpointError(
        `param group ${i} differs between the checkpoint and this run:` +
          (missing.length ? ` missing from the checkpoint: ${missing.join(', ')};` : '') +
          (extra.length ? ` not in this run: ${extra.join(', ')}` : ''),
      );
    }
    const ranges = rangesFromMeta(part, target.dpRank);
    /** Lays out one value per parameter by the target's flat group and cuts the target rank's shard. */
    const shardOf = (what: string, valueFor: (name: string) => Float32Array | undefined): Float32Array => {
      const flat = new Float32Array(part.paddedSize);
      for (const [name, offset, size] of part.entries) {
        const slice = valueFor(name);
        if (!slice || slice.length !== size) {
          throw new CheckpointError(
            `parameter ${name}: ${slice?.length ?? 0} elements of ${what} in the checkpoint, ${size} in this run`,
          );
        }
        flat.set(slice, offset);
      }
      const shard = new Float32Array(part.shardSize);
      for (const r of ranges) shard.set(flat.subarray(r.flatStart, r.flatStart + r.length), r.shardStart);
      return shard;
    };
    for (const buffer of group.buffers) {
      const shard = shardOf(buffer, (name) => group.byParam.get(name)?.[buffer]);
      tensors[`optimizer.group${i}.${buffer}`] = { shape: [shard.length], data: shard };
    }
    const weights = target.parameters;
    if (weights) {
      const shard = shardOf('the weights', (name) => weights.get(name));
      tensors[`params.group${i}`] = { shape: [shard.length], data: shard };
    }
  });
  const groups = full.groups.map((g) => ({ options: g.options, step: g.step, buffers: [...g.buffers] }));
  if (target.zeroStage === 0) return { tensors, meta: { type: full.type, groups } };
  const meta: ShardedOwnerMeta = {
    replicated: false,
    zeroStage: target.zeroStage,
    type: full.type,
    groups,
    partitions: target.partitions,
  };
  return { tensors, meta };
}

function readOwnerTensors(file: string): OwnerState['tensors'] {
  const out: OwnerState['tensors'] = {};
  for (const [k, v] of readSafetensorsFile(file, file).tensors) {
    if (v.dtype !== 'F32') throw new CheckpointError(`${file}: tensor ${k} has dtype ${v.dtype}, expected F32`);
    out[k] = { shape: v.shape, data: v.data as Float32Array };
  }
  return out;
}

/**
 * Reads a checkpoint's optimizer state (manifest already checked by `readManifest`) from `tagDir` and
 * returns it in the target layout. Data-parallel rank r's shard is the owner file of rank r (checkpoints
 * are saved with tensor and pipeline parallel size 1); a replicated (stage-0) state is read from rank 0.
 * `fallbackGroups`: the saved layout when the manifest does not record it (stage-0 checkpoints).
 */
export function reshardOwnerState(
  manifest: CheckpointManifest,
  tagDir: string,
  target: TargetLayout,
  fallbackGroups?: PartitionMeta[],
): OwnerState {
  const w = manifest.world;
  if (w.tensorParallelSize * w.pipelineParallelSize !== 1) {
    throw new CheckpointError(
      `checkpoint "${manifest.tag}" has tensor parallel size ${w.tensorParallelSize} and pipeline parallel size ${w.pipelineParallelSize}; resharding handles data parallelism only`,
    );
  }
  const layout = savedLayout(manifest, fallbackGroups);
  const full = assembleFullOptimizerState(manifest.owner, layout, (dpRank) => {
    const f = manifest.files.find((x) => x.kind === 'owner' && x.rank === dpRank);
    if (!f) throw new CheckpointError(`checkpoint "${manifest.tag}" has no optimizer state file for rank ${dpRank}`);
    return readOwnerTensors(path.join(tagDir, f.file));
  });
  return sliceOptimizerState(full, target);
}
