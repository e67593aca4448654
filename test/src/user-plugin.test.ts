import { ConfigError, initialize, Linear, Module, manualSeed, PluginError, tf } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { emaPlugin } from '../plugins/ema-plugin.js';

class Regressor extends Module {
  fc = this.registerModule('fc', new Linear(4, 1));
  loss(x: tf.Tensor2D, y: tf.Tensor2D): tf.Scalar {
    return tf.tidy(() => tf.losses.meanSquaredError(y, this.fc.forward(x)) as tf.Scalar);
  }
}

function data(i: number) {
  const x = tf.tensor2d([
    [i, 1, -i, 0.5],
    [1, i, 2, -1],
  ]);
  const y = tf.tensor2d([[0.3 * i], [-0.2]]);
  return { x, y };
}

describe('a plugin written outside core', () => {
  it('registers through the public interface, owns a config section and sees every step', async () => {
    manualSeed(1);
    const model = new Regressor();
    const ema = emaPlugin();
    const w0 = model.fc.weight.values();
    const engine = await initialize({
      model,
      config: {
        train_micro_batch_size_per_gpu: 2,
        optimizer: { type: 'SGD', params: { lr: 0.05 } },
        ema: { decay: 0.5 },
      },
      plugins: [ema],
    });
    expect(ema.state.decay).toBe(0.5);
    const expected = Float32Array.from(w0);
    for (let i = 0; i < 4; i++) {
      const { x, y } = data(i);
      engine.backward(() => model.loss(x, y));
      await engine.step();
      tf.dispose([x, y]);
      const w = model.fc.weight.values();
      for (let j = 0; j < w.length; j++) expected[j] = 0.5 * expected[j] + 0.5 * w[j];
    }
    expect(ema.state.updates).toBe(4);
    expect(ema.state.gradNorms).toHaveLength(4);
    expect(ema.state.gradNorms.every((n) => n > 0)).toBe(true);
    const shadow = ema.state.shadow.get('fc.weight')!;
    for (let j = 0; j < shadow.length; j++) expect(shadow[j]).toBeCloseTo(expected[j], 6);
  });

  it('its section is validated by its own schema; without the plugin the key is unknown', async () => {
    const config = { train_micro_batch_size_per_gpu: 2, ema: { decay: 1.5 } };
    const err = await initialize({ model: new Regressor(), config, plugins: [emaPlugin()] }).catch((e) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).issues.map((i) => i.path)).toContain('ema.decay');
    const err2 = await initialize({ model: new Regressor(), config: { ...config, ema: { decay: 0.5 } } }).catch(
      (e) => e,
    );
    expect(err2).toBeInstanceOf(ConfigError);
    expect((err2 as ConfigError).issues.map((i) => i.path)).toContain('ema');
  });

  it('two plugins claiming one section is a PluginError at initialize', async () => {
    await expect(
      initialize({
        model: new Regressor(),
        config: { train_micro_batch_size_per_gpu: 2 },
        plugins: [emaPlugin(), { ...emaPlugin(), name: 'other' }],
      }),
    ).rejects.toThrow(PluginError);
  });
});
