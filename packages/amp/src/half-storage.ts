/**
 * 16-bit parameter storage: the model's weights as the forward pass sees them, held as fp16/bf16 bit
 * patterns between steps and widened to fp32 for one leaf at a time.
 */

import {
  executionContext,
  type HalfFormat,
  type Module,
  narrow,
  type Parameter,
  type ParameterAccess,
  tf,
  widen,
} from '@zeroflow/core';

/**
 * Holds a 16-bit copy of every parameter and serves it through the engine's parameter hook point.
 *
 * The fp32 master weights are NOT held here: they are the optimizer-step owner's (core's stage-0 owner binds
 * every `Parameter.tensor` to a view of its flat fp32 buffer, so `param.tensor` always reads the master
 * values the optimizer updates). This class only rounds those masters into 16 bits (`refresh`), after every
 * optimizer step, and widens the 16-bit copy back to fp32 when a leaf asks for its weights, so the forward
 * pass computes with the ROUNDED weights, as a model stored in fp16/bf16 would (DeepSpeed keeps the model's
 * fp16 params and the optimizer's fp32 masters in the same way).
 */
export class HalfParameterStore {
  private readonly halves = new Map<Parameter, Uint16Array>();
  private stale = true;

  constructor(
    readonly format: HalfFormat,
    private readonly params: readonly Parameter[],
  ) {}

  /** Bytes held in 16-bit copies. */
  get bytes(): number {
    let n = 0;
    for (const h of this.halves.values()) n += h.byteLength;
    return n;
  }

  /** Marks the 16-bit copies out of date; they are rebuilt from the masters at the next use. */
  invalidate(): void {
    this.stale = true;
  }

  /** Rounds every parameter's current master (fp32) value into its 16-bit copy. */
  refresh(): void {
    for (const p of this.params) this.refreshOne(p);
    this.stale = false;
  }

  /** The 16-bit copy of `p` (rebuilt first when out of date). */
  half(p: Parameter): Uint16Array {
    if (this.stale) this.refresh();
    return this.halves.get(p) ?? this.refreshOne(p);
  }

  /** The fp32 value the forward pass uses for `p`: its 16-bit copy widened. */
  widened(p: Parameter): Float32Array {
    return widen(this.half(p), this.format);
  }

  private refreshOne(p: Parameter): Uint16Array {
    if (!p.tensor) {
      throw new Error(
        `@zeroflow/amp: parameter "${p.name}" has no fp32 master tensor on this rank; 16-bit storage needs one ` +
          '(ZeRO-3 partitioned parameters are not supported by this plugin yet)',
      );
    }
    // dataSync on the cpu backend hands back the master buffer itself: no copy before narrowing.
    const master = p.tensor.dataSync() as Float32Array;
    let h = this.halves.get(p);
    if (!h) this.halves.set(p, (h = new Uint16Array(p.size)));
    narrow(master, this.format, h);
    return h;
  }

  /**
   * The parameter access to install with `ctx.setParameterAccess`: `acquire` builds fresh fp32 tensors from
   * the 16-bit copies; `release` frees them as soon as the leaf is done, so only one leaf's widened weights
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
