/**
 * @zeroflow/backend-native: importing this package registers the `zeroflow-cpu` tfjs backend (tfjs's cpu
 * backend with native kernels for the hot ops) and makes it active. Without the native addon it leaves the
 * `cpu` backend active and says why once on stderr.
 */
import { registerNativeBackend } from './register.js';

export { NativeCpuBackend } from './backend.js';
export { installNativeHalfKernels, nativeHalfKernels } from './half-kernels.js';
export { type BinaryPlan, planBinary } from './kernels/elementwise.js';
export { planReduce, type ReducePlan } from './kernels/math.js';
export { type MatMulPlan, planMatMul } from './kernels/matmul-shapes.js';
export { installNativeFlatKernels, nativeFlatKernels } from './optim-kernels.js';
export { type MatMulPrecision, matMulPrecision, setMatMulPrecision } from './precision.js';
export {
  NATIVE_BACKEND_NAME,
  NATIVE_BACKEND_PRIORITY,
  type NativeBackendStatus,
  nativeBackendStatus,
  nativeKernelsAddon,
  registerNativeBackend,
  setNativeThreads,
} from './register.js';

registerNativeBackend();
