/**
 * `zeroInit`: construction-time partitioning as the main path, like DeepSpeed's
 * `with deepspeed.zero.Init(config_dict_or_path=...)`. The model is built before `initialize` exists, so
 * the world (rank, data-parallel size) is read from the environment exactly as `initialize` reads it, and
 * the persistence threshold from the same config. Every parameter above the threshold is created holding
 * only this rank's chunk; `initialize` (with the same config) adopts those chunks without communication.
 */
import {
  ConfigError,
  loadConfigInput,
  manualSeed,
  type ParameterFactory,
  resolveWorld,
  type WorldInfo,
  withParameterFactory,
} from '@zeroflow/core';
import { PACKAGE_NAME } from './config.js';
import { type FactoryStats, partitionedParameterFactory } from './factory.js';

/** Options of {@link zeroInit}. */
export interface ZeroInitOptions {
  /** Overrides of the world read from the environment (as `initialize({ world })`). */
  world?: Partial<WorldInfo>;
  /**
   * Seeds construction (`manualSeed`) first. Every rank must build with the same seed, since each keeps its
   * chunk of the values it draws: pass one here or call `manualSeed` yourself before.
   */
  seed?: number;
  /** Receives what the factory did (parameters partitioned, largest single transient draw). */
  onStats?: (stats: FactoryStats) => void;
}

/** DeepSpeed's default `stage3_param_persistence_threshold`. */
const DEFAULT_PERSISTENCE = 1e5;

/**
 * Reads `zero_optimization.stage` (must be 3) and the persistence threshold from a raw DeepSpeed config.
 * `"auto"` (filled from the model's hidden size only at `initialize`) partitions every parameter here; the
 * owner then rebuilds the ones it keeps whole from their chunks, so no rank ever holds a full large one.
 */
function persistenceOf(raw: Record<string, unknown>): number {
  const zero = (raw.zero_optimization ?? {}) as Record<string, unknown>;
  if (zero.stage !== 3)
    throw new ConfigError({
      path: 'zero_optimization.stage',
      value: zero.stage,
      rule: `zeroInit (${PACKAGE_NAME}) partitions parameters for ZeRO stage 3`,
      suggestion: 'set stage 3, or build the model normally',
    });
  const t = zero.stage3_param_persistence_threshold ?? zero.param_persistence_threshold;
  if (t === undefined) return DEFAULT_PERSISTENCE;
  if (t === 'auto') return 0;
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0)
    throw new ConfigError({
      path: 'zero_optimization.stage3_param_persistence_threshold',
      value: t,
      rule: 'must be a number of elements >= 0 or "auto"',
    });
  return Math.floor(t);
}

/** The partitioned factory for `config` and this process's place in the world (see {@link zeroInit}). */
export function zeroInitFactory(
  config: string | Record<string, unknown>,
  opts: Pick<ZeroInitOptions, 'world' | 'onStats'> = {},
): ParameterFactory {
  const raw = loadConfigInput(config);
  const world = resolveWorld(opts.world);
  return partitionedParameterFactory({
    rank: world.dataParallelSize > 1 ? world.dataParallelRank : 0,
    dpSize: world.dataParallelSize,
    persistenceThreshold: persistenceOf(raw),
    onStats: opts.onStats,
  });
}

/**
 * Builds a model with construction-time partitioning (DeepSpeed's `zero.Init`): inside `build`, every
 * parameter above `stage3_param_persistence_threshold` is created with `tensor = null` and only this rank's
 * chunk of its initial values, so the model never holds its full weights on any rank. Pass the result and
 * the same `config` to `initialize`, which adopts the chunks. The world comes from the environment (`RANK`,
 * `WORLD_SIZE`, ... as for `initialize`); every rank must build with the same seed.
 *
 * ```ts
 * const model = zeroInit('ds_config.json', () => new GPT(cfg), { seed: 1234 });
 * const engine = await initialize({ model, config: 'ds_config.json' });
 * ```
 */
export function zeroInit<T>(config: string | Record<string, unknown>, build: () => T, opts: ZeroInitOptions = {}): T {
  const factory = zeroInitFactory(config, opts);
  if (opts.seed !== undefined) manualSeed(opts.seed);
  return withParameterFactory(factory, build);
}
