import { tf } from '../tf.js';
import { executionContext, runLeaf } from './context.js';
import { layerNorm } from './fused-ops.js';
import { createParameter } from './init-scope.js';
import { Module } from './module.js';
import type { Parameter } from './parameter.js';

/** Weight layout of a Linear: `in_out` is Hugging Face GPT-2's Conv1D [in, out]; `out_in` is torch's [out, in]. */
export type LinearLayout = 'in_out' | 'out_in';

export interface LinearOptions {
  bias?: boolean;
  layout?: LinearLayout;
  /** Std of the normal init (GPT-2/Llama use 0.02). */
  initStd?: number;
}

/**
 * d/dx, d/dW (and d/db) of y = x W (+ b) over the last axis for dy, with W stored [in, out] or, `outIn`,
 * [out, in]: tfjs's gradients of a matMul and a broadcast bias add. Linear and the tied LM head use it.
 */
function projectionGradients(
  input: tf.Tensor,
  w: tf.Tensor,
  b: tf.Tensor | null,
  dy: tf.Tensor,
  outIn: boolean,
): tf.Tensor[] {
  return tf.tidy(() => {
    const [rows, cols] = w.shape as [number, number];
    const [inF, outF] = outIn ? [cols, rows] : [rows, cols];
    const x2 = input.reshape([-1, inF]);
    const dy2 = dy.reshape([-1, outF]);
    const dx = tf.matMul(dy2, w, false, !outIn).reshape(input.shape);
    const dw = outIn ? tf.matMul(dy2, x2, true, false) : tf.matMul(x2, dy2, true, false);
    return b ? [dx, dw, tf.sum(dy2, 0)] : [dx, dw];
  });
}

/** y = x W (+ b) over the last axis of x. */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly layout: LinearLayout;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: LinearOptions = {},
  ) {
    super();
    this.layout = opts.layout ?? 'out_in';
    const shape = this.layout === 'in_out' ? [inFeatures, outFeatures] : [outFeatures, inFeatures];
    this.weight = this.registerParameter(
      'weight',
      createParameter(shape, { kind: 'normal', mean: 0, std: opts.initStd ?? 0.02 }),
    );
    this.bias =
      opts.bias === false
        ? null
        : this.registerParameter('bias', createParameter([outFeatures], { kind: 'constant', value: 0 }));
  }

  forward(x: tf.Tensor): tf.Tensor {
    const params = this.bias ? [this.weight, this.bias] : [this.weight];
    return runLeaf(
      this,
      params,
      [x],
      ([input], weights) => {
        // One taped op: the product with the bias folded into it (_FusedMatMul: no separate pass over y for
        // the bias), its backward written out once for the tape and for recomputing accesses (ZeRO-3).
        const op = tf.customGrad(((xIn: tf.Tensor, ...rest: unknown[]) => {
          const save = rest.pop() as (tensors: tf.Tensor[]) => void;
          const ws = rest as tf.Tensor[];
          save([xIn, ...ws]);
          return {
            value: this.product(xIn, ws),
            gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => this.gradients(saved[0], saved.slice(1), dy),
          };
        }) as unknown as Parameters<typeof tf.customGrad>[0]);
        return (op as (...ts: tf.Tensor[]) => tf.Tensor)(input, ...weights);
      },
      ([input], weights, dy) => this.gradients(input, weights, dy),
    );
  }

  private product(input: tf.Tensor, [w, b]: tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const lead = input.shape.slice(0, -1);
      const x2 = input.reshape([-1, this.inFeatures]) as tf.Tensor2D;
      const y = tf.fused.matMul({ a: x2, b: w as tf.Tensor2D, transposeB: this.layout === 'out_in', bias: b });
      return y.reshape([...lead, this.outFeatures]);
    });
  }

  private gradients(input: tf.Tensor, [w, b]: tf.Tensor[], dy: tf.Tensor): tf.Tensor[] {
    return projectionGradients(input, w, b ?? null, dy, this.layout === 'out_in');
  }
}

/**
 * `table[ids]` with a scatter-add gradient written as one pass over the ids. tfjs's own gradient of
 * gather goes through UnsortedSegmentSum, whose cpu kernel loops over every row of the table for every
 * id (O(vocab x tokens x dim)): it made one GPT backward take minutes.
 */
function gatherRows(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const [num, dim] = table.shape as [number, number];
  const f = tf.customGrad(((w: tf.Tensor) => ({
    value: tf.gather(w, ids.flatten()),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => {
      const g = (Array.isArray(dy) ? dy[0] : dy).dataSync() as Float32Array;
      const idx = ids.dataSync();
      const out = new Float32Array(num * dim);
      for (let r = 0; r < idx.length; r++) {
        const dst = idx[r] * dim;
        const src = r * dim;
        for (let j = 0; j < dim; j++) out[dst + j] += g[src + j];
      }
      return [tf.tensor2d(out, [num, dim])];
    },
  })) as unknown as Parameters<typeof tf.customGrad>[0]);
  return (f as (w: tf.Tensor) => tf.Tensor)(table);
}

/** Row lookup in a [num, dim] table; `project` multiplies by the transposed table (a tied LM head). */
export class Embedding extends Module {
  readonly weight: Parameter;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: { initStd?: number } = {},
  ) {
    super();
    this.weight = this.registerParameter(
      'weight',
      createParameter([numEmbeddings, embeddingDim], { kind: 'normal', mean: 0, std: opts.initStd ?? 0.02 }),
    );
  }

  /** ids: int32 tensor of any shape -> [...shape, dim]. */
  forward(ids: tf.Tensor): tf.Tensor {
    return runLeaf(this, [this.weight], [], (_in, [w]) =>
      tf.tidy(() => gatherRows(w, ids).reshape([...ids.shape, this.embeddingDim])),
    );
  }

  /** x [..., dim] -> logits [..., num], using this table as the output projection (weight tying). */
  project(x: tf.Tensor): tf.Tensor {
    return runLeaf(
      this,
      [this.weight],
      [x],
      ([input], [w]) =>
        tf.tidy(() => {
          const lead = input.shape.slice(0, -1);
          return tf
            .matMul(input.reshape([-1, this.embeddingDim]), w, false, true)
            .reshape([...lead, this.numEmbeddings]);
        }),
      ([input], [w], dy) => projectionGradients(input, w, null, dy, true),
    );
  }
}

/** Layer normalization over the last axis (biased variance, as torch). */
export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;

  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
    opts: { bias?: boolean } = {},
  ) {
    super();
    this.weight = this.registerParameter('weight', createParameter([dim], { kind: 'constant', value: 1 }));
    this.bias =
      opts.bias === false
        ? null
        : this.registerParameter('bias', createParameter([dim], { kind: 'constant', value: 0 }));
  }

  forward(x: tf.Tensor): tf.Tensor {
    const params = this.bias ? [this.weight, this.bias] : [this.weight];
    // One fused kernel each way (fused-ops.ts): saves x and the per-row mean and rstd, not 8 intermediates.
    return runLeaf(this, params, [x], ([input], [g, b]) => layerNorm(input, g, b ?? null, this.eps));
  }
}

/** RMS normalization over the last axis (Llama): x / sqrt(mean(x^2) + eps) * g. */
export class RMSNorm extends Module {
  readonly weight: Parameter;

  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
  ) {
    super();
    this.weight = this.registerParameter('weight', createParameter([dim], { kind: 'constant', value: 1 }));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return runLeaf(this, [this.weight], [x], ([input], [g]) =>
      tf.tidy(() => {
        const ms = tf.mean(tf.square(input), input.rank - 1, true);
        return tf.mul(tf.mul(input, tf.rsqrt(tf.add(ms, this.eps))), g);
      }),
    );
  }
}

/**
 * Inverted dropout with masks drawn from the execution context's seeded generator, so runs are
 * reproducible and activation checkpointing replays the same masks. Identity in eval mode or when p = 0.
 */
export class Dropout extends Module {
  constructor(readonly p: number) {
    super();
    if (!(p >= 0 && p < 1)) throw new RangeError(`Dropout p must be in [0, 1), got ${p}`);
  }

  forward(x: tf.Tensor): tf.Tensor {
    if (!this.training || this.p === 0) return x;
    const rng = executionContext().rng;
    const keep = 1 - this.p;
    const mask = new Float32Array(x.size);
    for (let i = 0; i < mask.length; i++) mask[i] = rng.uniform() < keep ? 1 / keep : 0;
    return tf.tidy(() => tf.mul(x, tf.tensor(mask, x.shape)));
  }
}
