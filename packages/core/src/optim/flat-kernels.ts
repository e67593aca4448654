/**
 * Optional native loops for the flat optimizers. Core never depends on native code: `@zeroflow/backend-native`
 * installs them on import when its addon is built. They must be bit-identical to the TS loops (tested there).
 */
export interface FlatKernels {
  adam(
    params: Float32Array,
    grads: Float32Array,
    expAvg: Float32Array,
    expAvgSq: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
    adamWMode: boolean,
    biasCorrection: boolean,
  ): void;
  sgd(
    params: Float32Array,
    grads: Float32Array,
    momentumBuffer: Float32Array | null,
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
    firstStep: boolean,
  ): void;
}

// On globalThis: the ESM and CJS builds of core must see the same kernels.
const KEY = Symbol.for('zeroflow.flatKernels');
const slot = globalThis as unknown as Record<symbol, FlatKernels | null | undefined>;

/** Installs (null: removes) native flat-optimizer kernels. */
export function setFlatKernels(kernels: FlatKernels | null): void {
  slot[KEY] = kernels;
}

/** The installed kernels, or null (the TS loops run). */
export function flatKernels(): FlatKernels | null {
  return slot[KEY] ?? null;
}
