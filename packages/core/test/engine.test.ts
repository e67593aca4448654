import { describe, expect, it } from 'vitest';
import { ConfigError, initialize, PluginError, tf, type ZeroFlowPlugin } from '../src/index.js';
import { batch, Mlp } from './fixtures/mlp.js';

const base = {
  train_micro_batch_size_per_gpu: 8,
  gradient_accumulation_steps: 1,
  optimizer: { type: 'AdamW', params: { lr: 0.01, weight_decay: 0.1 } },
};

function weights(m: Mlp): Float32Array[] {
  return m.parameters().map((p) => p.values());
}

describe('engine', () => {
  it('trains: the loss falls over steps', async () => {
    const model = new Mlp();
    const engine = await initialize({ model, config: base });
    const first = engine.evaluate(() => model.loss(batch(0, 64).x, batch(0, 64).y));
    for (let i = 0; i < 30; i++) {
      const b = batch(i % 8, 8);
      engine.backward(() => model.loss(b.x, b.y));
      await engine.step();
    }
    const last = engine.evaluate(() => model.loss(batch(0, 64).x, batch(0, 64).y));
    expect(last).toBeLessThan(first * 0.8);
    expect(engine.globalSteps).toBe(30);
  });

  it('gradient accumulation equals one big batch (1/GAS scaling)', async () => {
    const a = new Mlp();
    const b = new Mlp();
    const ea = await initialize({ model: a, config: { ...base, train_micro_batch_size_per_gpu: 8 } });
    const eb = await initialize({
      model: b,
      config: { ...base, train_micro_batch_size_per_gpu: 4, gradient_accumulation_steps: 2 },
    });
    for (let s = 0; s < 3; s++) {
      const big = batch(s, 8);
      ea.backward(() => a.loss(big.x, big.y));
      expect(ea.isGradientAccumulationBoundary()).toBe(true);
      await ea.step();
      for (let m = 0; m < 2; m++) {
        const x = big.x.subarray(m * 24, m * 24 + 24);
        const y = big.y.subarray(m * 4, m * 4 + 4);
        eb.backward(() => b.loss(x, y));
        expect(eb.isGradientAccumulationBoundary()).toBe(m === 1);
        const r = await eb.step();
        expect(r === null).toBe(m === 0);
      }
    }
    const wa = weights(a);
    const wb = weights(b);
    wa.forEach((w, i) => w.forEach((v, j) => expect(Math.abs(v - wb[i][j])).toBeLessThan(1e-5)));
    expect(eb.globalSteps).toBe(3);
    expect(eb.microSteps).toBe(6);
  });

  it('clips the global gradient norm to gradient_clipping', async () => {
    const model = new Mlp();
    const before = weights(model);
    const engine = await initialize({
      model,
      config: { ...base, gradient_clipping: 0.01, optimizer: { type: 'SGD', params: { lr: 1 } } },
    });
    const b = batch(0, 8);
    engine.backward(() => model.loss(b.x, b.y));
    const r = await engine.step();
    expect(r!.gradNorm).toBeGreaterThan(0.01);
    let sq = 0;
    weights(model).forEach((w, i) => w.forEach((v, j) => (sq += (v - before[i][j]) ** 2)));
    expect(Math.sqrt(sq)).toBeCloseTo(0.01, 4); // SGD lr 1: the update is the clipped gradient
  });

  it('does not leak tensors over 50 steps', async () => {
    const model = new Mlp(3, 0.1);
    const engine = await initialize({
      model,
      config: { ...base, gradient_accumulation_steps: 2, train_micro_batch_size_per_gpu: 4 },
    });
    const run = async (i: number) => {
      const b = batch(i, 4);
      engine.backward(() => model.loss(b.x, b.y));
      await engine.step();
    };
    await run(0);
    await run(1);
    const n = tf.memory().numTensors;
    for (let i = 0; i < 50; i++) await run(i);
    expect(tf.memory().numTensors).toBe(n);
  });

  it('rejects bad plugin sets and names the package a config needs', async () => {
    const owner = (name: string): ZeroFlowPlugin => ({
      name,
      version: '1.0.0',
      coreVersion: '^0.1.0',
      provides: ['optimizer-step'],
      createGradientOwner: () => {
        throw new Error('unused');
      },
    });
    await expect(initialize({ model: new Mlp(), config: base, plugins: [owner('a'), owner('b')] })).rejects.toThrow(
      /exactly one plugin may own the optimizer step/,
    );
    await expect(
      initialize({ model: new Mlp(), config: base, plugins: [{ name: 'x', version: '1.0.0', coreVersion: '^2.0.0' }] }),
    ).rejects.toThrow(/needs @zeroflow\/core \^2\.0\.0/);
    await expect(
      initialize({
        model: new Mlp(),
        config: base,
        plugins: [{ name: 'y', version: '1.0.0', coreVersion: '*', requires: ['comm'] }],
      }),
    ).rejects.toThrow(PluginError);
    await expect(
      initialize({
        model: new Mlp(),
        config: { ...base, zero_optimization: { stage: 3, offload_param: { device: 'nvme', nvme_path: '/tmp' } } },
      }),
    ).rejects.toThrow(/@zeroflow\/offload-nvme/);
    await expect(initialize({ model: new Mlp(), config: { ...base, gradient_clippin: 1 } })).rejects.toThrow(
      ConfigError,
    );
  });
});

describe('engine optimizers from config', () => {
  for (const type of ['Adam', 'AdamW', 'SGD', 'Lamb']) {
    it(`${type} from the config section trains`, async () => {
      const model = new Mlp();
      const engine = await initialize({
        model,
        config: { train_micro_batch_size_per_gpu: 8, optimizer: { type, params: { lr: 0.01 } } },
      });
      const b = batch(0, 8);
      const l0 = engine.evaluate(() => model.loss(b.x, b.y));
      for (let i = 0; i < 5; i++) {
        engine.backward(() => model.loss(b.x, b.y));
        await engine.step();
      }
      expect(engine.evaluate(() => model.loss(b.x, b.y))).toBeLessThan(l0);
    });
  }
});
