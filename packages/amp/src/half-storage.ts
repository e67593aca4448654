/**
 * The forward pass's view of 16-bit parameters: amp's parameter access widens each leaf's weights from the
 * optimizer-step owner's 16-bit flat buffer just in time, one leaf at a time.
 *
 * The 16-bit buffer is the owner's (core's stage 0 and the ZeRO stage 1/2 owners keep the full model ONLY as
 * 16-bit bit patterns, with fp32 master weights for their optimizer partition): the owner hands it to amp
 * through the `amp` service (`attachParameterStorage`), so there is a single 16-bit copy of the model and
 * amp never holds parameters itself. A parameter the owner does not hold (a frozen one), or every parameter
 * under an owner that keeps fp32 parameters, is rounded to 16 bits from `Parameter.tensor` at each use, so
 * the forward pass computes with 16-bit weights in every case, as a model stored in fp16/bf16 would.
 */

import {
  executionContext,
  type HalfFormat,
  type HalfParameterStorage,
  type Module,
  type Parameter,
  type ParameterAccess,
  roundInPlace,
  tf,
  widen,
} from '@zeroflow/core';

/** Serves 16-bit parameters to the forward pass through the engine's parameter hook point. */
export class HalfParameterAccess {
  private storage: HalfParameterStorage | null = null;

  constructor(readonly format: HalfFormat) {}

  /** The owner's 16-bit parameters (null until an owner attached them). */
  get attached(): HalfParameterStorage | null {
    return this.storage;
  }

  /** Called through the `amp` service by the optimizer-step owner. */
  attach(storage: HalfParameterStorage): void {
    if (storage.format !== this.format) {
      throw new Error(
        `@zeroflow/amp: the optimizer-step owner stores parameters as ${storage.format}, amp runs ${this.format}`,
      );
    }
    this.storage = storage;
  }

  /** The fp32 values the forward pass uses for `p`: its 16-bit value widened. */
  widened(p: Parameter): Float32Array {
    const h = this.storage?.half(p);
    if (h) return widen(h, this.format);
    if (!p.tensor) {
      throw new Error(
        `@zeroflow/amp: parameter "${p.name}" has neither 16-bit storage nor an fp32 tensor on this rank ` +
          '(a partitioned parameter must be served by its owner’s parameter access, as ZeRO-3’s is)',
      );
    }
    return roundInPlace((p.tensor.dataSync() as Float32Array).slice(), this.format);
  }

  /**
   * The parameter access to install with `ctx.setParameterAccess`: `acquire` builds fresh fp32 tensors from
   * the 16-bit values; `release` frees them as soon as the leaf is done, so only one leaf's widened weights
   * are alive at a time outside of what backward keeps.
   */
  access(): ParameterAccess {
    return {
      acquire: (params: Parameter[], _leaf: Module) => params.map((p) => tf.tensor(this.widened(p), p.shape)),
      release: (params: Parameter[], weights: tf.Tensor[]) => {
        const capture = executionContext().capture;
        weights.forEach((w, i) => {
          // With gradients on, a trainable weight reaches compute through core's identity customGrad, whose
          // output (a clone sharing this data) is what backward keeps: disposing ours is safe. A frozen weight
          // is used directly and backward may need it (e.g. for an input gradient): tfjs's gradient scope
          // disposes it at the end of backward instead.
          if (!capture || params[i].requiresGrad) w.dispose();
        });
      },
    };
  }
}
