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
    /** The gradient is fround(grads[i] * gradScale) (deferred clipping); honoured when `adamGradScale`. */
    gradScale?: number,
  ): void;
  /** `adam` applies its `gradScale` argument (kernels without it get pre-scaled gradients). */
  adamGradScale?: boolean;
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
  /** Gradient accumulation, as `addIntoLoop` (flat-loops.ts) (optional: older kernel sets leave it to the TS loop). */
  addInto?(dst: Float32Array, src: Float32Array, fresh: boolean): void;
  /** As `scaleSumOfSquaresLoop`, bit for bit (the block/lane order is part of the contract). */
  scaleSumOfSquares?(x: Float32Array, scale: number): number;
  /** As `scaleLoop`. */
  scale?(x: Float32Array, scale: number): void;
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
