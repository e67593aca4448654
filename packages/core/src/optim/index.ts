export { ADAM_DEFAULTS, Adam, type AdamOptions, AdamW } from './adam.js';
export { createOptimizer, OPTIMIZER_TYPES } from './create-optimizer.js';
export { createScheduler, SCHEDULER_TYPES } from './create-scheduler.js';
export { LRRangeTest, type LRRangeTestParams, OneCycle, type OneCycleParams } from './cycle-schedules.js';
export { type FlatKernels, flatKernels, setFlatKernels } from './flat-kernels.js';
export {
  addIntoFlat,
  addIntoLoop,
  SUM_SQUARES_BLOCK,
  scaleFlat,
  scaleLoop,
  scaleSumOfSquares,
  scaleSumOfSquaresLoop,
} from './flat-loops.js';
export { acceptsGradScale, type FlatGroupState, FlatOptimizerBase } from './flat-optimizer.js';
export { LAMB_DEFAULTS, Lamb, type LambOptions } from './lamb.js';
export { LRSchedulerBase } from './lr-scheduler-base.js';
export {
  type BuildParamGroupsOptions,
  buildParamGroups,
  isNoDecayParam,
  type NamedParamGroup,
  type NamedParamShape,
} from './param-groups.js';
export { SGD, SGD_DEFAULTS } from './sgd.js';
export * from './types.js';
export {
  WarmupCosineLR,
  type WarmupCosineLRParams,
  WarmupDecayLR,
  type WarmupDecayLRParams,
  WarmupLR,
  type WarmupLRParams,
  type WarmupType,
} from './warmup-schedules.js';
