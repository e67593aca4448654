/**
 * `@zeroflow/zero-stage3`: ZeRO stage 3 (parameters, gradients and optimizer state partitioned between
 * data-parallel ranks) as a ZeroFlow plugin. Core loads it by name when `zero_optimization.stage` is 3.
 */
import type { ZeroFlowPlugin } from '@zeroflow/core';
import { PACKAGE_NAME } from './config.js';
import { partitionedParameterFactory } from './factory.js';
import { Stage3Owner } from './stage3-owner.js';

export { HeaderedAllGather, type PendingGather } from './all-gather.js';
export { checkStage3Config, PACKAGE_NAME, type Stage3Settings } from './config.js';
export {
  type FactoryStats,
  type PartitionedFactoryOptions,
  partitionedParameterFactory,
  takeFactoryShard,
} from './factory.js';
export { type GathererOptions, type GatherStats, ShardGatherer } from './gather.js';
export { ShardGradientReducer } from './grad-reducer.js';
export { type ZeroInitOptions, zeroInit, zeroInitFactory } from './init.js';
export {
  chunkOf,
  copyChunk,
  layoutStage3,
  type ParamSlot,
  persistentParameters,
  type Stage3Layout,
} from './layout.js';
export { Stage3Owner, type Stage3Stats } from './stage3-owner.js';
export { GatherTrace, StagingPool, type TraceStep } from './trace.js';

/** This package's version. */
export const VERSION = '0.1.0';

/** Creates the stage-3 plugin: it owns gradient reduction, the optimizer step and parameter storage. */
export function createPlugin(): ZeroFlowPlugin {
  return {
    name: PACKAGE_NAME,
    version: VERSION,
    coreVersion: '^0.1.0',
    // `comm` (allGather, reduceScatter) is needed only when data_parallel_size > 1; the owner checks it.
    provides: ['optimizer-step', 'parameter-storage'],
    // After the comm plugin (a normal plugin) has set up and offered its ProcessGroup.
    enforce: 'post',
    setup(ctx) {
      const comm = ctx.service<{ rank: number }>('comm');
      const dpSize = ctx.world.dataParallelSize;
      ctx.setParameterFactory(
        partitionedParameterFactory({
          rank: dpSize > 1 ? (comm?.rank ?? ctx.world.dataParallelRank) : 0,
          dpSize,
          persistenceThreshold: Math.max(
            0,
            Math.floor(ctx.config.zero_optimization.stage3_param_persistence_threshold),
          ),
        }),
      );
    },
    createGradientOwner: (ctx, optimizer) => new Stage3Owner(ctx, optimizer),
  };
}

/** The plugin, ready to pass to `initialize({ plugins: [plugin] })`. */
export const plugin: ZeroFlowPlugin = createPlugin();
export default plugin;
