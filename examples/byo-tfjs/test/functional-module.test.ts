import { backwardWithHooks, initialize, type Parameter, tf } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { FunctionalModule } from '../src/functional-module.js';
import { type Batch, collate, DEFAULT_SPEC, initWeights, mlpLoss, syntheticTask } from '../src/mlp.js';

const spec = DEFAULT_SPEC;
const batch = collate(spec, syntheticTask(spec, 8, 5));

describe('FunctionalModule', () => {
  it('registers one named Parameter per weight, in the given order, with the given values', () => {
    const init = initWeights(spec, 3);
    const m = new FunctionalModule<Batch>(init, mlpLoss(spec));
    expect(m.namedParameters().map(([n, p]) => [n, p.shape])).toEqual([
      ['w1', [16, 64]],
      ['b1', [64]],
      ['w2', [64, 4]],
      ['b2', [4]],
    ]);
    expect(m.weightValues().w2.values).toEqual(init.w2.values);
    // the adapter copied the user's arrays: mutating them later does not change the model
    init.w2.values[0] += 1;
    expect(m.weightValues().w2.values[0]).not.toBe(init.w2.values[0]);
  });

  it('delivers, through the hook point, exactly the gradients tf.grads computes for the plain function', () => {
    const init = initWeights(spec, 3);
    const names = Object.keys(init);
    const tensors = names.map((n) => tf.tensor(init[n].values, init[n].shape));
    const loss = mlpLoss(spec);
    const expected = tf.grads((...ws: tf.Tensor[]) => loss(Object.fromEntries(names.map((n, i) => [n, ws[i]])), batch))(
      tensors,
    );

    const m = new FunctionalModule<Batch>(init, loss);
    const got = new Map<Parameter, Float32Array>();
    backwardWithHooks(
      () => m.loss(batch),
      (p, g) => got.set(p, (g.dataSync() as Float32Array).slice()),
    );
    m.namedParameters().forEach(([, p], i) => {
      const want = expected[i].dataSync();
      const have = got.get(p)!;
      expect(have).toHaveLength(want.length);
      for (let k = 0; k < want.length; k++) expect(have[k]).toBeCloseTo(want[k], 6);
    });
    tf.dispose([...tensors, ...expected]);
  });

  it('accepts tfjs tensors as initial weights and rejects unusable ones', () => {
    const w = tf.ones([2, 3]);
    const m = new FunctionalModule({ w }, (ws) => tf.sum(ws.w) as tf.Scalar);
    expect(m.weightValues().w.values).toEqual(new Float32Array(6).fill(1));
    expect(w.isDisposed).toBe(false); // the caller still owns its tensor
    expect(() => new FunctionalModule({ 'a.b': w }, (ws) => tf.sum(ws['a.b']) as tf.Scalar)).toThrow(/contain no "\."/);
    expect(() => new FunctionalModule({ x: { shape: [2], values: new Float32Array(3) } }, () => tf.scalar(0))).toThrow(
      /2 elements, values has 3/,
    );
    expect(() => new FunctionalModule({}, () => tf.scalar(0))).toThrow(/no weights/);
    w.dispose();
  });

  it('trains in one process with the engine (stage 0): the loss falls', async () => {
    const m = new FunctionalModule<Batch>(initWeights(spec, 3), mlpLoss(spec));
    const engine = await initialize({
      model: m,
      config: { train_micro_batch_size_per_gpu: 8, optimizer: { type: 'Adam', params: { lr: 0.02 } } },
    });
    const losses: number[] = [];
    for (let s = 0; s < 15; s++) {
      engine.backward(() => m.loss(batch));
      losses.push((await engine.step())!.loss);
    }
    await engine.close();
    expect(losses[14]).toBeLessThan(losses[0] * 0.5);
  });
});
