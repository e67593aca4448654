/**
 * Gradients in 16 bits: the `amp` service (core's MixedPrecisionService, extended).
 *
 * In DeepSpeed's fp16/bf16 training the backward pass produces 16-bit gradients, so a gradient smaller than
 * the format's smallest subnormal flushes to zero (fp16: 2^-24 ~ 6e-8) and one above its largest finite value
 * overflows to inf (fp16: 65504). Loss scaling exists exactly to move gradients out of the underflow range
 * without overflowing. ZeroFlow computes in fp32, so the engine rounds each gradient to 16 bits with this
 * service before the optimizer-step owner accumulates it, where DeepSpeed's would be 16-bit.
 */

import type { HalfParameterStorage, MixedPrecisionService } from '@zeroflow/core';
import { type HalfFormat, narrow, roundInPlace, widen } from '@zeroflow/core';

/** The capability (and service key) under which amp offers `AmpService`. */
export const AMP_SERVICE = 'amp';

/**
 * What amp offers through `ctx.service<AmpService>('amp')`: the engine calls `roundGradInPlace` on each
 * gradient a backward delivers; owners may send gradients as `gradDtype` on the wire with `narrow`/`widen`.
 */
export interface AmpService extends MixedPrecisionService {
  /** The 16-bit format of parameters and gradients. */
  readonly gradDtype: HalfFormat;
  /** Rounds `buf` in place to values representable in `gradDtype` (overflow -> inf, underflow -> 0). */
  roundGradInPlace(buf: Float32Array): void;
  /** fp32 -> 16-bit patterns (for 16-bit communication). */
  narrow(src: Float32Array, dst?: Uint16Array): Uint16Array;
  /** 16-bit patterns -> fp32. */
  widen(src: Uint16Array, dst?: Float32Array): Float32Array;
  /** The current loss scale (1 for bf16). */
  lossScale(): number;
  /** The optimizer-step owner hands over its 16-bit parameters; amp's parameter access widens them. */
  attachParameterStorage(storage: HalfParameterStorage): void;
}

/**
 * Builds the service for `format`; `lossScale` reads the plugin's scaler, `attach` receives the owner's
 * 16-bit parameters.
 */
export function createAmpService(
  format: HalfFormat,
  lossScale: () => number,
  attach: (storage: HalfParameterStorage) => void,
): AmpService {
  return {
    attachParameterStorage: attach,
    gradDtype: format,
    roundGradInPlace: (buf) => {
      roundInPlace(buf, format);
    },
    narrow: (src, dst) => narrow(src, format, dst),
    widen: (src, dst) => widen(src, format, dst),
    lossScale,
  };
}
