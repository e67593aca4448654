import { tf } from '../tf.js';

/** How a parameter's initial values are drawn (recorded so ZeRO-3 can initialize only its shard). */
export type ParameterInit =
  | { kind: 'normal'; mean: number; std: number }
  | { kind: 'uniform'; low: number; high: number }
  | { kind: 'constant'; value: number }
  | { kind: 'values'; values: Float32Array };

/**
 * A trainable tensor of a Module. Its full fp32 value is `tensor` when materialized; plugins may keep it
 * elsewhere (ZeRO-3 shards, 16-bit storage) and supply it through the parameter access hook instead.
 */
export class Parameter {
  /** Dotted path from the root module, set when the root module binds names (`Module.namedParameters`). */
  name = '';
  readonly shape: number[];
  readonly size: number;
  requiresGrad: boolean;
  /** The full fp32 value; null when a plugin owns storage (e.g. ZeRO-3 keeps only a shard). */
  tensor: tf.Tensor | null;
  /** Free-form annotations for plugins (tensor-parallel partition dim, no-decay, ...). */
  readonly meta: Record<string, unknown> = {};
  readonly init: ParameterInit;

  constructor(shape: number[], init: ParameterInit, values: Float32Array | null, requiresGrad = true) {
    this.shape = shape.slice();
    this.size = shape.reduce((a, b) => a * b, 1);
    this.init = init;
    this.requiresGrad = requiresGrad;
    this.tensor = values ? tf.tensor(values, this.shape, 'float32') : null;
  }

  /** Replaces the value (disposing the old tensor). `values` is adopted without copy (tfjs cpu keeps it). */
  assign(values: Float32Array): void {
    if (values.length !== this.size) {
      throw new RangeError(`Parameter ${this.name || '(unnamed)'}: expected ${this.size} values, got ${values.length}`);
    }
    const old = this.tensor;
    this.tensor = tf.tensor(values, this.shape, 'float32');
    old?.dispose();
  }

  /**
   * Overwrites the value in place when this parameter's tensor owns its buffer (so a flat buffer that the
   * tensor views, e.g. the optimizer owner's, sees the new values); otherwise replaces the tensor.
   */
  load(values: Float32Array): void {
    if (values.length !== this.size) {
      throw new RangeError(`Parameter ${this.name || '(unnamed)'}: expected ${this.size} values, got ${values.length}`);
    }
    const t = this.tensor;
    const buf = t ? t.dataSync() : null;
    // The cpu backend hands back the very array it holds; only then is an in-place copy visible to the tensor.
    if (t && buf instanceof Float32Array && buf === t.dataSync()) buf.set(values);
    else this.assign(values.slice());
  }

  /** A copy of the current value (throws if a plugin holds the storage). */
  values(): Float32Array {
    if (!this.tensor) throw new Error(`Parameter ${this.name} is not materialized on this rank`);
    return (this.tensor.dataSync() as Float32Array).slice();
  }
}
