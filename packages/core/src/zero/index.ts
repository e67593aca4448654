export { sumOfSquares } from '../engine/flat-params.js';
export { BucketReducer, type BucketReducerOptions } from './bucket-reducer.js';
export type { FloatBuffer } from './collectives.js';
export {
  allGatherContiguous,
  allGatherUnits,
  chunkPerRank,
  dataParallelGroup,
  globalNorm,
  reduceScatterContiguous,
  StagingBuffers,
  sharedFloat32,
  unscaleAndClip,
} from './collectives.js';
export { checkZeroStageConfig, type ZeroStageSettings } from './config-check.js';
export {
  contiguousShardView,
  type GroupPartition,
  gatherShard,
  isContiguous,
  type OwnershipUnit,
  PADDING_SEGMENT,
  type PartitionMeta,
  partitionByUnits,
  partitionContiguous,
  partitionMeta,
  rangesFromMeta,
  type ShardRange,
  shardSegments,
} from './partition.js';
export {
  assembleFullOptimizerState,
  type FullOptimizerGroup,
  type FullOptimizerState,
  replicatedLayout,
  reshardOwnerState,
  savedLayout,
  sliceOptimizerState,
  type TargetLayout,
} from './reshard.js';
export { loadShardedStateDict, type ShardedOwnerMeta, shardedStateDict } from './sharded-state.js';
