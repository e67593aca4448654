import { Generator, manualSeed, tf } from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { type CausalLM, GPT, type GPTConfig, Llama, type LlamaConfig } from '../src/index.js';
import { hookedGradients, relL2 } from './helpers.js';

const gptConfig: GPTConfig = { vocabSize: 37, blockSize: 12, nEmbd: 16, nLayer: 2, nHead: 4 };
const llamaConfig: LlamaConfig = {
  vocabSize: 37,
  hiddenSize: 16,
  intermediateSize: 40,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  maxPositionEmbeddings: 12,
};

function makeGPT(extra: Partial<GPTConfig> = {}, seed = 3): GPT {
  manualSeed(seed);
  return new GPT({ ...gptConfig, ...extra });
}

function makeLlama(extra: Partial<LlamaConfig> = {}, seed = 3): Llama {
  manualSeed(seed);
  return new Llama({ ...llamaConfig, ...extra });
}

/** Deterministic ids in [0, 37). */
function batchIds(b: number, t: number, salt = 0): Int32Array {
  return Int32Array.from({ length: b * t }, (_, i) => (i * 7 + salt * 13 + 5) % 37);
}

const builders: [string, (dropout?: number) => CausalLM][] = [
  ['GPT', (dropout = 0) => makeGPT({ dropout })],
  ['Llama', (dropout = 0) => makeLlama({ attentionDropout: dropout })],
];

describe.each(builders)('%s', (_name, build) => {
  it('activation checkpointing gives the same loss and gradients (dropout masks replayed)', () => {
    const model = build(0.2);
    const ids = batchIds(2, 10);
    const lossFn = () => model.loss({ inputIds: ids, shape: [2, 10] });
    const plain = hookedGradients(lossFn, new Generator(11));
    model.setActivationCheckpointing(true);
    expect(model.activationCheckpointing).toBe(true);
    const ckpt = hookedGradients(lossFn, new Generator(11));
    expect(ckpt.loss).toBe(plain.loss);
    expect([...ckpt.grads.keys()].sort()).toEqual([...plain.grads.keys()].sort());
    for (const [n, g] of plain.grads) expect(relL2(ckpt.grads.get(n)!, g), n).toBeLessThan(1e-6);
    // And the dropout really was active: another seed gives another loss.
    expect(hookedGradients(lossFn, new Generator(12)).loss).not.toBe(plain.loss);
    model.dispose();
  });

  it('does not leak tensors over repeated loss + backward (typed-array and tensor batches)', () => {
    const model = build(0.1);
    model.setActivationCheckpointing(true);
    const ids = tf.tensor2d(batchIds(2, 8), [2, 8], 'int32');
    const step = (i: number) => {
      hookedGradients(() => model.loss({ inputIds: batchIds(2, 8, i), shape: [2, 8] }));
      hookedGradients(() => model.loss({ inputIds: ids }));
    };
    step(0);
    const before = tf.memory().numTensors;
    for (let i = 1; i < 4; i++) step(i);
    model.setActivationCheckpointing(false);
    for (let i = 1; i < 3; i++) step(i);
    expect(tf.memory().numTensors).toBe(before);
    ids.dispose();
    model.dispose();
  });

  it('loss with explicit targets equals the HF-style shifted loss; negative targets are ignored', () => {
    const model = build();
    const full = batchIds(2, 9);
    const inputs = new Int32Array(2 * 8);
    const targets = new Int32Array(2 * 8);
    for (let b = 0; b < 2; b++) {
      for (let t = 0; t < 8; t++) {
        inputs[b * 8 + t] = full[b * 9 + t];
        targets[b * 8 + t] = full[b * 9 + t + 1];
      }
    }
    const value = (l: tf.Scalar) => {
      const v = l.dataSync()[0];
      l.dispose();
      return v;
    };
    const shifted = value(model.loss({ inputIds: full, shape: [2, 9] }));
    const explicit = value(model.loss({ inputIds: inputs, targets, shape: [2, 8] }));
    expect(explicit).toBeCloseTo(shifted, 5);
    expect(shifted).toBeGreaterThan(Math.log(37) * 0.8); // untrained: near uniform
    // Ignoring the second row's targets = the loss of the first row alone.
    const firstOnly = value(model.loss({ inputIds: inputs.slice(0, 8), targets: targets.slice(0, 8), shape: [1, 8] }));
    const masked = targets.slice();
    masked.fill(-100, 8);
    expect(value(model.loss({ inputIds: inputs, targets: masked, shape: [2, 8] }))).toBeCloseTo(firstOnly, 5);
    expect(() => model.loss({ inputIds: inputs, targets: targets.slice(0, 8), shape: [2, 8] })).toThrow(/8 ids/);
    model.dispose();
  });

  it('dropout changes outputs in train mode only', () => {
    const withDropout = build(0.3);
    const without = build(0);
    const ids = tf.tensor2d(batchIds(1, 8), [1, 8], 'int32');
    const run = (m: CausalLM) => {
      const y = m.forward(ids);
      const v = y.dataSync() as Float32Array;
      y.dispose();
      return v;
    };
    const train1 = run(withDropout);
    const train2 = run(withDropout);
    const reference = run(without.eval());
    expect(relL2(train1, reference)).toBeGreaterThan(1e-3);
    expect(relL2(train1, train2)).toBeGreaterThan(1e-3); // fresh masks each call
    withDropout.eval();
    expect(relL2(run(withDropout), reference)).toBe(0);
    expect(relL2(run(withDropout), run(withDropout))).toBe(0);
    ids.dispose();
    withDropout.dispose();
    without.dispose();
  });

  it('generate is deterministic for a seed, respects topK, crops to the block size and restores train mode', () => {
    const model = build(0.1);
    const prompt = [1, 2, 3];
    const a = model.generate(prompt, { maxNewTokens: 14, seed: 5 });
    const b = model.generate(prompt, { maxNewTokens: 14, seed: 5 });
    expect(a).toEqual(b);
    expect(a.length).toBe(17); // prompt + 14 > blockSize 12: the context was cropped
    expect(a.slice(0, 3)).toEqual(prompt);
    expect(a.every((t) => Number.isInteger(t) && t >= 0 && t < 37)).toBe(true);
    expect(model.training).toBe(true);
    const seeds = [6, 7, 8, 9].map((seed) => model.generate(prompt, { maxNewTokens: 14, seed }).join());
    expect(new Set([a.join(), ...seeds]).size).toBeGreaterThan(1);
    // topK = 1 is greedy at any temperature.
    const greedy = model.generate(prompt, { maxNewTokens: 6, temperature: 0 });
    expect(model.generate(prompt, { maxNewTokens: 6, topK: 1, temperature: 2, seed: 9 })).toEqual(greedy);
    // topK = 3: every token is among the 3 most likely of its step.
    const sampled = model.generate(prompt, { maxNewTokens: 8, topK: 3, temperature: 5, seed: 1 });
    model.eval();
    for (let i = prompt.length; i < sampled.length; i++) {
      const context = sampled.slice(Math.max(0, i - 12), i);
      const ids = tf.tensor2d(context, [1, context.length], 'int32');
      const logits = model.forward(ids);
      const last = Array.from(logits.dataSync().slice((context.length - 1) * 37));
      tf.dispose([ids, logits]);
      const rank = last.filter((v) => v > last[sampled[i]]).length;
      expect(rank, `token ${i}`).toBeLessThan(3);
    }
    model.dispose();
  });

  it('rejects bad ids', () => {
    const model = build();
    const tooLong = tf.zeros([1, 13], 'int32');
    const floats = tf.zeros([1, 4]);
    expect(() => model.forward(tooLong)).toThrow(/sequence length 13 is outside \[1, 12\]/);
    expect(() => model.forward(floats)).toThrow(/expected int32 ids/);
    expect(() => model.loss({ inputIds: batchIds(1, 4), targets: Int32Array.from([1, 2, 3, 40]) })).toThrow(
      />= vocab size 37/,
    );
    tf.dispose([tooLong, floats]);
    model.dispose();
  });
});

describe('GPT structure', () => {
  it('uses Hugging Face names, Conv1D layout, tied head and the scaled c_proj init', () => {
    const model = makeGPT({ nLayer: 8, nEmbd: 64, nHead: 4 });
    const named = new Map(model.namedParameters());
    expect([...named.keys()].slice(0, 8)).toEqual([
      'transformer.wte.weight',
      'transformer.wpe.weight',
      'transformer.h.0.ln_1.weight',
      'transformer.h.0.ln_1.bias',
      'transformer.h.0.attn.c_attn.weight',
      'transformer.h.0.attn.c_attn.bias',
      'transformer.h.0.attn.c_proj.weight',
      'transformer.h.0.attn.c_proj.bias',
    ]);
    expect(named.has('lm_head.weight')).toBe(false);
    expect(named.get('transformer.h.0.attn.c_attn.weight')!.shape).toEqual([64, 192]);
    expect(named.get('transformer.h.0.mlp.c_fc.weight')!.shape).toEqual([64, 256]);
    expect(named.size).toBe(2 + 8 * 12 + 2);
    const std = (name: string) => {
      const v = named.get(name)!.values();
      return Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
    };
    expect(std('transformer.h.0.mlp.c_fc.weight')).toBeCloseTo(0.02, 2);
    expect(std('transformer.h.0.mlp.c_proj.weight') / (0.02 / Math.sqrt(16))).toBeCloseTo(1, 1);
    expect(std('transformer.h.3.attn.c_proj.weight') / (0.02 / Math.sqrt(16))).toBeCloseTo(1, 1);
    model.dispose();
  });

  it('is reproducible under manualSeed', () => {
    const a = makeGPT({}, 9);
    const b = makeGPT({}, 9);
    const c = makeGPT({}, 10);
    const w = (m: GPT) => m.transformer.h.items[1].mlp.cFc.weight.values();
    expect(w(b)).toEqual(w(a));
    expect(relL2(w(c), w(a))).toBeGreaterThan(0.5);
    for (const m of [a, b, c]) m.dispose();
  });
});

describe('Llama structure', () => {
  it('uses Hugging Face names, [out, in] layout, GQA shapes and an untied head by default', () => {
    const model = makeLlama();
    const named = new Map(model.namedParameters());
    expect([...named.keys()].slice(0, 10)).toEqual([
      'model.embed_tokens.weight',
      'model.layers.0.self_attn.q_proj.weight',
      'model.layers.0.self_attn.k_proj.weight',
      'model.layers.0.self_attn.v_proj.weight',
      'model.layers.0.self_attn.o_proj.weight',
      'model.layers.0.mlp.gate_proj.weight',
      'model.layers.0.mlp.up_proj.weight',
      'model.layers.0.mlp.down_proj.weight',
      'model.layers.0.input_layernorm.weight',
      'model.layers.0.post_attention_layernorm.weight',
    ]);
    expect(named.get('model.layers.0.self_attn.k_proj.weight')!.shape).toEqual([8, 16]); // 2 kv heads x 4
    expect(named.get('model.layers.0.mlp.down_proj.weight')!.shape).toEqual([16, 40]);
    expect(named.get('lm_head.weight')!.shape).toEqual([37, 16]);
    expect([...named.keys()].some((n) => n.endsWith('.bias'))).toBe(false);
    const tied = makeLlama({ tieWordEmbeddings: true });
    expect(tied.namedParameters().some(([n]) => n === 'lm_head.weight')).toBe(false);
    const { grads } = hookedGradients(() => tied.loss({ inputIds: batchIds(1, 6) }));
    expect(grads.get('model.embed_tokens.weight')!.some((v) => v !== 0)).toBe(true);
    model.dispose();
    tied.dispose();
  });
});
