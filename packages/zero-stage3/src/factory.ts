/**
 * Construction-time partitioning (DeepSpeed's `zero.Init`): a model built inside `zeroInit(config, build)`
 * (see init.ts), `engine.initScope(...)` or `withParameterFactory(partitionedParameterFactory(...), build)` never holds its partitioned weights
 * in full. Each large parameter is created with `tensor = null` and only this rank's chunk of its initial
 * values; the stage-3 owner adopts that chunk at `init`. The initial values are those the default factory
 * would draw for the same seed, so a model built this way equals one built normally and partitioned later.
 * Drawing a chunk still draws the whole parameter once (the generator is sequential): the transient peak
 * is one parameter, never the model.
 */
import { drawInitValues, Parameter, type ParameterFactory } from '@zeroflow/core';
import { chunkOf, copyChunk } from './layout.js';

/** Where the factory leaves a parameter's chunk for the owner (removed once adopted). */
const SHARD_KEY = 'zero3.shard';

/** Options of {@link partitionedParameterFactory}. */
export interface PartitionedFactoryOptions {
  /** This rank within the data-parallel group. */
  rank: number;
  dpSize: number;
  /** Parameters with at most this many elements are created whole (`stage3_param_persistence_threshold`). */
  persistenceThreshold: number;
  /** Called after every parameter with the running totals (tests and diagnostics). */
  onStats?: (stats: FactoryStats) => void;
}

/** What a partitioned factory has created so far. */
export interface FactoryStats {
  /** Parameters created as this rank's chunk only (`tensor === null`). */
  partitioned: number;
  /** Parameters created whole (at most the persistence threshold). */
  whole: number;
  /** Elements of the largest full draw: the one transient full copy, freed before the next parameter. */
  largestDraw: number;
}

/** A ParameterFactory that keeps only this rank's chunk of every parameter above the persistence threshold. */
export function partitionedParameterFactory(opts: PartitionedFactoryOptions): ParameterFactory {
  const stats: FactoryStats = { partitioned: 0, whole: 0, largestDraw: 0 };
  return {
    create(shape, init, seed) {
      const size = shape.reduce((a, b) => a * b, 1);
      const full = drawInitValues(init, size, seed);
      stats.largestDraw = Math.max(stats.largestDraw, size);
      const whole = size <= opts.persistenceThreshold;
      if (whole) stats.whole++;
      else stats.partitioned++;
      opts.onStats?.({ ...stats });
      if (whole) return new Parameter(shape, init, full);
      const p = new Parameter(shape, init, null);
      const chunk = chunkOf(size, opts.dpSize);
      const shard = new Float32Array(chunk);
      copyChunk(full, opts.rank, chunk, shard);
      p.meta[SHARD_KEY] = shard;
      return p;
    },
  };
}

/** This rank's chunk of `p` if it was created by the partitioned factory (and not adopted yet). */
export function takeFactoryShard(p: Parameter): Float32Array | null {
  const s = p.meta[SHARD_KEY];
  if (!(s instanceof Float32Array)) return null;
  delete p.meta[SHARD_KEY];
  return s;
}
