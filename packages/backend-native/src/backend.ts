import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { KernelsAddon } from '@zeroflow/native';

/**
 * The `zeroflow-cpu` backend: tfjs's cpu backend (same tensor storage, so every cpu kernel runs on it
 * unchanged) plus the native kernels addon that the overridden kernels call.
 */
export class NativeCpuBackend extends MathBackendCPU {
  constructor(readonly kernels: KernelsAddon) {
    super();
    // The cpu backend prints "install tfjs-node" on its first write; ZeroFlow brings its own native kernels.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }
}
