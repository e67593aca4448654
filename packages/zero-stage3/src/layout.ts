/**
 * How ZeRO stage 3 splits parameters between data-parallel ranks (DESIGN.md section 6).
 *
 * Every parameter is its own ownership unit, as in DeepSpeed's `ds_tensor`: a parameter of `s` elements is
 * padded to `c * N` (`c = ceil(s / N)`) and rank r owns elements `[r*c, (r+1)*c)`. So one leaf layer's
 * weights are rebuilt by all-gathering only its own parameters' chunks, never a whole bucket of
 * unrelated ones. A rank's shard of an optimizer param group is the concatenation of its chunks of the
 * group's parameters, in model order; the optimizer state and the fp32 parameter shard follow that layout.
 *
 * The layout is expressed with core's {@link GroupPartition} (units = parameters), so core's sharded
 * checkpoint state and its resharding metadata (`partitionMeta`) describe it unchanged.
 */
import {
  type FlatGroup,
  type GroupPartition,
  type NamedParameter,
  type Parameter,
  type ShardRange,
  ZeroFlowError,
} from '@zeroflow/core';

/** Where one parameter's chunk lives on this rank. */
export interface ParamSlot {
  param: Parameter;
  name: string;
  /** Index of the parameter in model order (the same on every rank; sent with each gather as a check). */
  index: number;
  /** Optimizer param group. */
  group: number;
  /** Elements per rank: `ceil(size / N)`. */
  chunk: number;
  /** Offset of this parameter's chunk in the rank's shard of its group. */
  shardOffset: number;
  /** Stays whole on every rank (`size <= stage3_param_persistence_threshold`). */
  persistent: boolean;
}

/** The stage-3 layout of all parameters, seen from one rank. */
export interface Stage3Layout {
  partitions: GroupPartition[];
  slots: Map<Parameter, ParamSlot>;
  /** Slots in model order. */
  ordered: ParamSlot[];
}

/** Elements per rank for a parameter of `size` elements over `dpSize` ranks. */
export function chunkOf(size: number, dpSize: number): number {
  return Math.ceil(size / dpSize);
}

/**
 * The parameters that stay whole, chosen as DeepSpeed's `mark_persistent_parameters` does: in model order,
 * each of at most `threshold` elements, while all of them together stay within `modelThreshold` elements.
 */
export function persistentParameters(
  parameters: readonly NamedParameter[],
  threshold: number,
  modelThreshold = Number.MAX_SAFE_INTEGER,
): Set<Parameter> {
  const out = new Set<Parameter>();
  let total = 0;
  for (const { param } of parameters) {
    if (param.size > threshold || total + param.size > modelThreshold) continue;
    out.add(param);
    total += param.size;
  }
  return out;
}

/**
 * Lays out the parameters of each param group one unit per parameter, for rank `rank` of `dpSize`.
 * Persistent parameters: see {@link persistentParameters}.
 */
export function layoutStage3(
  parameters: readonly NamedParameter[],
  paramGroups: readonly { names: string[] }[],
  dpSize: number,
  rank: number,
  persistenceThreshold: number,
  modelPersistenceThreshold = Number.MAX_SAFE_INTEGER,
): Stage3Layout {
  const persistent = persistentParameters(parameters, persistenceThreshold, modelPersistenceThreshold);
  const byName = new Map(parameters.map((p) => [p.name, p.param]));
  const modelIndex = new Map(parameters.map((p, i) => [p.param, i]));
  const slots = new Map<Parameter, ParamSlot>();
  const partitions = paramGroups.map((g, gi) => {
    const entries: FlatGroup['entries'] = [];
    const units: GroupPartition['units'] = [];
    const ranges: ShardRange[] = [];
    let offset = 0;
    let size = 0;
    let shardOffset = 0;
    for (const name of g.names) {
      const param = byName.get(name);
      if (!param) throw new ZeroFlowError(`param group ${gi} names "${name}", which is not a parameter of the model`);
      if (slots.has(param)) throw new ZeroFlowError(`parameter "${name}" is in more than one param group`);
      const chunk = chunkOf(param.size, dpSize);
      entries.push({ name, param, offset, size: param.size });
      units.push({ start: offset, length: chunk * dpSize });
      ranges.push({ flatStart: offset + rank * chunk, shardStart: shardOffset, length: chunk });
      slots.set(param, {
        param,
        name,
        index: modelIndex.get(param) ?? -1,
        group: gi,
        chunk,
        shardOffset,
        persistent: persistent.has(param),
      });
      offset += chunk * dpSize;
      size += param.size;
      shardOffset += chunk;
    }
    const group: FlatGroup = { index: gi, entries, size, paddedSize: offset };
    return { group, dpSize, rank, units, shardSize: shardOffset, ranges } satisfies GroupPartition;
  });
  const missing = parameters.filter((p) => p.param.requiresGrad && !slots.has(p.param)).map((p) => p.name);
  if (missing.length) throw new ZeroFlowError(`parameters in no param group: ${missing.join(', ')}`);
  const ordered = [...slots.values()].sort((a, b) => a.index - b.index);
  return { partitions, slots, ordered };
}

/** Copies rank `rank`'s chunk of a full parameter value into `dst` (zero padding past the end). */
export function copyChunk(full: Float32Array, rank: number, chunk: number, dst: Float32Array): void {
  const start = Math.min(full.length, rank * chunk);
  const end = Math.min(full.length, start + chunk);
  dst.set(full.subarray(start, end));
  dst.fill(0, end - start, chunk);
}
