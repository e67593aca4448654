/**
 * The thinnest adapter between a plain TensorFlow.js model and ZeroFlow: named weights plus a loss function
 * `(weights, batch) => tf.Scalar`, wrapped into a `Module` whose weights are registered `Parameter`s.
 *
 * Why ZeroFlow needs this much and no more: the engine and every ZeRO stage see a model only as a list of
 * named parameters (to flatten, partition, checkpoint) and learn about gradients through `runLeaf`, the one
 * hook point that hands each weight's gradient to the gradient owner the moment backward produces it. So
 * the adapter registers one `Parameter` per weight and runs the whole user function as a single leaf whose
 * weights are all the parameters. Nothing here knows about layers, so any tfjs computation works.
 *
 * Generic enough for core (`@zeroflow/core`'s `nn/`); it lives in this example until the lead moves it.
 */
import { createParameter, Module, type Parameter, runLeaf, type tf } from '@zeroflow/core';

/** A weight's initial value: a tensor (its values are copied; the caller keeps ownership) or shape + values. */
export type WeightInit = tf.Tensor | { shape: number[]; values: Float32Array };

/** Weights by name, as the user's functions receive them. */
export type Weights = Record<string, tf.Tensor>;

/** The user's loss: plain tfjs ops on `weights` (the only tensors that get gradients) and the batch. */
export type LossFunction<B> = (weights: Weights, batch: B) => tf.Scalar;

function initialValues(name: string, w: WeightInit): { shape: number[]; values: Float32Array } {
  if ('values' in w && w.values instanceof Float32Array) {
    const size = w.shape.reduce((a, b) => a * b, 1);
    if (size !== w.values.length) {
      throw new RangeError(`weight "${name}": shape [${w.shape}] has ${size} elements, values has ${w.values.length}`);
    }
    return { shape: w.shape.slice(), values: w.values.slice() };
  }
  const t = w as tf.Tensor;
  if (t.dtype !== 'float32') throw new TypeError(`weight "${name}": dtype ${t.dtype}, ZeroFlow trains float32 weights`);
  return { shape: t.shape.slice(), values: (t.dataSync() as Float32Array).slice() };
}

/**
 * A `Module` made of a plain tfjs function and its weights.
 *
 * ```ts
 * const model = new FunctionalModule({ w: tf.randomNormal([8, 4]) }, (ws, b: Batch) => tf.losses.softmaxCrossEntropy(b.y, b.x.matMul(ws.w)));
 * const engine = await initialize({ model, config });
 * engine.backward(() => model.loss(batch));
 * ```
 *
 * Rules the user's function must follow (the same ones tfjs's `tf.grads` has): read the weights only from
 * its `weights` argument (closed-over variables get no gradient), and let every weight contribute to the
 * loss (a ZeRO stage waits for one gradient per weight use).
 */
export class FunctionalModule<B> extends Module {
  /** The registered parameters, in the order the weights were given. */
  private readonly ordered: { name: string; param: Parameter }[] = [];

  constructor(
    weights: Record<string, WeightInit>,
    private readonly lossFunction: LossFunction<B>,
  ) {
    super();
    const names = Object.keys(weights);
    if (names.length === 0) throw new Error('FunctionalModule: no weights given');
    for (const name of names) {
      if (name === '' || name.includes('.')) {
        // dots separate module levels in parameter names and checkpoints
        throw new Error(`FunctionalModule: weight name "${name}" must be non-empty and contain no "."`);
      }
      const { shape, values } = initialValues(name, weights[name]);
      // through the active parameter factory, so that ZeRO-3's partitioned construction also applies
      const param = this.registerParameter(name, createParameter(shape, { kind: 'values', values }));
      this.ordered.push({ name, param });
    }
  }

  /** The weight names, in registration order. */
  get weightNames(): string[] {
    return this.ordered.map((o) => o.name);
  }

  /**
   * Runs `fn` on the weights through ZeroFlow's parameter hook: inside `engine.backward` their gradients
   * reach the gradient owner; under a plugin that owns storage (ZeRO-3, 16-bit weights) `fn` still sees fp32.
   */
  apply<T extends tf.Tensor>(fn: (weights: Weights) => T): T {
    const params = this.ordered.map((o) => o.param);
    return runLeaf(this, params, [], (_inputs, ws) => {
      const named: Weights = {};
      this.ordered.forEach((o, i) => {
        named[o.name] = ws[i];
      });
      return fn(named);
    });
  }

  /** The user's loss on `batch`; call it inside `engine.backward(() => model.loss(batch))`. */
  loss(batch: B): tf.Scalar {
    return this.apply((ws) => this.lossFunction(ws, batch));
  }

  /** Copies of the current weight values by name (e.g. to hand back to plain tfjs code after training). */
  weightValues(): Record<string, { shape: number[]; values: Float32Array }> {
    return this.stateDict();
  }
}
