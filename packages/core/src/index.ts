export * from './comm/index.js';
export * from './config/index.js';
export * from './data/index.js';
export {
  addInto,
  asFloat32,
  dtypeOpts,
  type FlatBuffer,
  HalfFlatParameters,
  type MasterShard,
  type OwnerParameters,
  ownerParameters,
  sharedUint16,
  wholeGroup,
} from './engine/half-params.js';
export * from './engine/index.js';
export { type MixedPrecisionLayout, mixedPrecisionLayout } from './engine/mixed-precision.js';
export * from './errors.js';
export * from './io/index.js';
export * from './monitor/index.js';
export * from './nn/index.js';
export * from './numeric/half.js';
export { type HalfKernels, halfKernels, setHalfKernels } from './numeric/half-kernels.js';
export * from './optim/index.js';
export type * from './plugin.js';
export { tf } from './tf.js';
export * from './version.js';
export * from './zero/index.js';
