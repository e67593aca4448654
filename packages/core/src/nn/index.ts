export { checkpoint } from './checkpoint.js';
export {
  type BackwardResult,
  backwardWithHooks,
  executionContext,
  type GradientCapture,
  type LeafBackward,
  materializedAccess,
  type ParameterAccess,
  runLeaf,
  vjp,
  withExecutionContext,
  withSavedTape,
} from './context.js';
export { attentionShape, causalSelfAttention, hasFusedAttention, registerFusedAttention } from './fused-attention.js';
export {
  FUSED_KERNELS,
  geluNew,
  layerNorm,
  registerFusedOps,
  softmaxCrossEntropy,
} from './fused-ops.js';
export {
  createParameter,
  drawInitValues,
  manualSeed,
  type ParameterFactory,
  withParameterFactory,
} from './init-scope.js';
export { Dropout, Embedding, LayerNorm, Linear, type LinearLayout, type LinearOptions, RMSNorm } from './layers.js';
export { Module, materializedBytes, type StateDict } from './module.js';
export { Parameter, type ParameterInit } from './parameter.js';
export { Generator } from './rng.js';
