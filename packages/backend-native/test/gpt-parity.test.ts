/**
 * A GPT-tiny and a Llama-tiny (@zeroflow/models) give the same logits, loss and every parameter gradient on
 * the native backend as on tfjs's cpu backend (relative L2 <= 1e-5).
 */
import { backwardWithHooks, manualSeed, type Parameter, tf } from '@zeroflow/core';
import { type CausalLM, GPT, Llama } from '@zeroflow/models';
import { describe, expect, it } from 'vitest';
import { nativeBackendStatus } from '../src/index.js';
import { NATIVE } from './helpers.js';

function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

function run(backend: string, build: () => CausalLM) {
  tf.setBackend(backend);
  manualSeed(5);
  const model = build();
  const [B, T] = [3, 11];
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7 + 3) % 37);
  const targets = Int32Array.from({ length: B * T }, (_, i) => (i * 5 + 1) % 37);
  const idsTensor = tf.tensor2d(ids, [B, T], 'int32');
  const logitsTensor = model.forward(idsTensor);
  const logits = Float32Array.from(logitsTensor.dataSync() as Float32Array);
  tf.dispose([idsTensor, logitsTensor]);
  const names = new Map<Parameter, string>(model.namedParameters().map(([name, p]) => [p, name]));
  const grads = new Map<string, Float32Array>();
  const { loss } = backwardWithHooks(
    () => model.loss({ inputIds: ids, targets, shape: [B, T] }),
    (p: Parameter, g: tf.Tensor) => {
      const v = g.dataSync() as Float32Array;
      const name = names.get(p) ?? p.name;
      const acc = grads.get(name);
      if (acc) for (let i = 0; i < v.length; i++) acc[i] += v[i];
      else grads.set(name, Float32Array.from(v));
    },
  );
  model.dispose();
  return { logits, loss, grads };
}

const builders: [string, () => CausalLM][] = [
  ['GPT', () => new GPT({ vocabSize: 37, blockSize: 16, nEmbd: 32, nLayer: 2, nHead: 4 })],
  [
    'Llama',
    () =>
      new Llama({
        vocabSize: 37,
        hiddenSize: 32,
        intermediateSize: 72,
        numHiddenLayers: 2,
        numAttentionHeads: 4,
        numKeyValueHeads: 2,
        maxPositionEmbeddings: 16,
      }),
  ],
];

describe.skipIf(!nativeBackendStatus()?.active)('models on the native backend', () => {
  it.each(builders)('%s: logits, loss and every gradient match the cpu backend to 1e-5', (_name, build) => {
    const cpu = run('cpu', build);
    const native = run(NATIVE, build);
    tf.setBackend(NATIVE);
    expect(relL2(native.logits, cpu.logits)).toBeLessThanOrEqual(1e-5);
    expect(Math.abs(native.loss - cpu.loss) / Math.abs(cpu.loss)).toBeLessThanOrEqual(1e-5);
    expect([...native.grads.keys()].sort()).toEqual([...cpu.grads.keys()].sort());
    expect(cpu.grads.size).toBeGreaterThan(5);
    for (const [name, g] of cpu.grads) expect(relL2(native.grads.get(name)!, g), name).toBeLessThanOrEqual(1e-5);
  });
});
