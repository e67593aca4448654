import { ZeroFlowError } from '../errors.js';
import type { Parameter } from '../nn/parameter.js';
import { scaleSumOfSquares } from '../optim/flat-loops.js';
import type { FlatSegment } from '../optim/types.js';
import type { NamedParameter } from '../plugin.js';

/** Node 20 caps one ArrayBuffer at 4 GiB (DESIGN.md 4): one flat fp32 buffer holds at most 2^30 - 1 values. */
export const MAX_FLAT_ELEMENTS = 2 ** 30 - 1;

/** Where one parameter lives inside its flat group. */
export interface FlatEntry {
  name: string;
  param: Parameter;
  offset: number;
  size: number;
}

/**
 * The parameters of one optimizer param group, laid out back to back in parameter order and padded to a
 * multiple of `alignTo` (the data-parallel size, so that every rank owns an equal contiguous slice).
 */
export interface FlatGroup {
  index: number;
  entries: FlatEntry[];
  /** Sum of parameter sizes. */
  size: number;
  /** `size` rounded up to a multiple of `alignTo`. */
  paddedSize: number;
}

/**
 * Lays out parameters into flat groups, in the order the groups list their names (which is model order).
 * Every parameter must be in exactly one group.
 */
export function layoutFlatGroups(
  params: readonly NamedParameter[],
  groups: readonly { names: string[] }[],
  alignTo = 1,
): FlatGroup[] {
  const byName = new Map(params.map((p) => [p.name, p.param]));
  const seen = new Set<string>();
  const out = groups.map((g, index) => {
    const entries: FlatEntry[] = [];
    let offset = 0;
    for (const name of g.names) {
      const param = byName.get(name);
      if (!param)
        throw new ZeroFlowError(`param group ${index} names "${name}", which is not a parameter of the model`);
      if (seen.has(name)) throw new ZeroFlowError(`parameter "${name}" is in more than one param group`);
      seen.add(name);
      entries.push({ name, param, offset, size: param.size });
      offset += param.size;
    }
    const paddedSize = Math.ceil(offset / alignTo) * alignTo;
    if (paddedSize > MAX_FLAT_ELEMENTS) {
      throw new ZeroFlowError(
        `param group ${index} has ${paddedSize} elements; one flat buffer holds at most ${MAX_FLAT_ELEMENTS}`,
      );
    }
    return { index, entries, size: offset, paddedSize };
  });
  const missing = params.filter((p) => p.param.requiresGrad && !seen.has(p.name)).map((p) => p.name);
  if (missing.length) throw new ZeroFlowError(`parameters in no param group: ${missing.join(', ')}`);
  return out;
}

/** Segments (one per parameter) of the part [start, end) of a flat group, relative to `start`. */
export function segmentsOf(group: FlatGroup, start = 0, end = group.paddedSize): FlatSegment[] {
  const segs: FlatSegment[] = [];
  for (const e of group.entries) {
    const a = Math.max(e.offset, start);
    const b = Math.min(e.offset + e.size, end);
    if (b > a) segs.push({ name: e.name, offset: a - start, length: b - a });
  }
  return segs;
}

/**
 * Copies each parameter's value into `buffer` and re-points the parameter at a zero-copy view of it, so
 * that an in-place optimizer update of `buffer` is the new parameter value (the cpu backend keeps the exact
 * Float32Array given to `tf.tensor`, DESIGN.md 4).
 */
export function bindParametersToBuffer(group: FlatGroup, buffer: Float32Array): void {
  for (const e of group.entries) {
    buffer.set(e.param.values(), e.offset);
    e.param.assign(buffer.subarray(e.offset, e.offset + e.size));
  }
}

/**
 * Sum of squares of `a` in float64, in the fixed block/lane order of the engine's gradient norm
 * (`scaleSumOfSquares`, native where installed): the same bits as the norm the owners compute.
 */
export function sumOfSquares(a: Float32Array): number {
  return scaleSumOfSquares(a, 1);
}
