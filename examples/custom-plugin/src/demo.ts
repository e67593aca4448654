/**
 * The training job the plugin is shown on: a small regression MLP built from core's leaf layers, fitting a
 * fixed smooth function of its inputs. Shared by `train.ts` and the test, so the test runs what users run.
 */
import { type Engine, initialize, Linear, Module, manualSeed, tf, type ZeroFlowPlugin } from '@zeroflow/core';

/** y = Linear(tanh(Linear(x))): 8 inputs, 32 hidden units, 1 output. */
export class Regressor extends Module {
  readonly fc1: Linear;
  readonly fc2: Linear;

  constructor(
    readonly inputs = 8,
    hidden = 32,
  ) {
    super();
    this.fc1 = this.registerModule('fc1', new Linear(inputs, hidden, { initStd: 0.3 }));
    this.fc2 = this.registerModule('fc2', new Linear(hidden, 1, { initStd: 0.3 }));
  }

  /** Mean squared error on a batch of `n` rows. */
  loss(batch: { x: Float32Array; y: Float32Array; n: number }): tf.Scalar {
    return tf.tidy(() => {
      const x = tf.tensor2d(batch.x, [batch.n, this.inputs]);
      const pred = this.fc2.forward(tf.tanh(this.fc1.forward(x)));
      return tf.losses.meanSquaredError(tf.tensor2d(batch.y, [batch.n, 1]), pred) as tf.Scalar;
    });
  }
}

/** The `step`-th deterministic batch of `n` rows: x in [-1, 1)^8, y = sin(x0 + 2 x1) + x2 x3. */
export function batchAt(step: number, n: number, inputs = 8): { x: Float32Array; y: Float32Array; n: number } {
  const x = new Float32Array(n * inputs);
  const y = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < inputs; i++) {
      // a cheap hash of (step, row, column) mapped to [-1, 1)
      const h = Math.imul((step * 7919 + r) * 31 + i, 2654435761) >>> 0;
      x[r * inputs + i] = (h / 2 ** 32) * 2 - 1;
    }
    const o = r * inputs;
    y[r] = Math.sin(x[o] + 2 * x[o + 1]) + x[o + 2] * x[o + 3];
  }
  return { x, y, n };
}

/** Builds the model and engine with `plugins`, trains `steps` optimizer steps; returns losses per step. */
export async function trainDemo(opts: {
  config: string | Record<string, unknown>;
  steps: number;
  plugins: ZeroFlowPlugin[];
  onStep?: (step: number, loss: number, gradNorm: number) => void;
}): Promise<{ engine: Engine; model: Regressor; losses: number[] }> {
  manualSeed(42);
  const model = new Regressor();
  const engine = await initialize({ model, config: opts.config, plugins: opts.plugins });
  const micro = engine.config.train_micro_batch_size_per_gpu;
  const { dataParallelRank: dpRank, dataParallelSize: dpSize } = engine.world;
  const losses: number[] = [];
  let micros = 0;
  while (engine.globalSteps < opts.steps) {
    // each rank reads its own slice of the global batch
    engine.backward(() => model.loss(batchAt(micros++ * dpSize + dpRank, micro)));
    const out = await engine.step();
    if (!out) continue;
    losses.push(out.loss);
    opts.onStep?.(engine.globalSteps, out.loss, out.gradNorm);
  }
  return { engine, model, losses };
}
