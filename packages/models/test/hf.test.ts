import * as path from 'node:path';
import {
  backwardWithHooks,
  CheckpointError,
  ConfigError,
  manualSeed,
  materializedAccess,
  type Parameter,
  type tf,
} from '@zeroflow/core';
import { describe, expect, it } from 'vitest';
import { readSafetensors, type SafetensorsTensor } from '../../core/src/io/index.js';
import { GPT, GPTConfig, Llama, LlamaConfig, loadHFStateDict, modelFromHFConfig } from '../src/index.js';
import { relL2, repoRoot } from './helpers.js';

const fixtures = path.resolve(repoRoot(), '..', 'shared', 'fixtures');
const gptJSON = {
  model_type: 'gpt2',
  vocab_size: 50,
  n_positions: 16,
  n_embd: 16,
  n_layer: 1,
  n_head: 2,
  n_inner: null,
  activation_function: 'gelu_new',
  resid_pdrop: 0.1,
  embd_pdrop: 0.1,
  attn_pdrop: 0.1,
  layer_norm_epsilon: 1e-5,
};

describe('Hugging Face configs', () => {
  it('GPTConfig.fromHF maps the GPT-2 keys and validates', () => {
    const c = GPTConfig.fromHF(gptJSON);
    expect(c).toMatchObject({ vocabSize: 50, nPositions: 16, nEmbd: 16, nLayer: 1, nHead: 2, residDropout: 0.1 });
    expect(GPTConfig.resolve(c).nInner).toBe(64);
    expect(() =>
      GPTConfig.fromHF({ ...gptJSON, vocab_size: undefined, scale_attn_by_inverse_layer_idx: true }),
    ).toThrow(ConfigError);
    try {
      GPTConfig.fromHF({ ...gptJSON, vocab_size: undefined, n_layer: 'two' });
    } catch (e) {
      expect((e as ConfigError).issues.map((i) => i.path).sort()).toEqual(['n_layer', 'vocab_size']);
    }
    expect(() => new GPT({ ...c, nHead: 3 })).toThrow(/divisible by nHead/);
  });

  it('LlamaConfig.fromHF maps Llama keys including rope scaling', () => {
    const json = {
      model_type: 'llama',
      vocab_size: 64,
      hidden_size: 32,
      intermediate_size: 48,
      num_hidden_layers: 1,
      num_attention_heads: 4,
      num_key_value_heads: 1,
      max_position_embeddings: 32,
      rope_theta: 500000,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8,
      },
      tie_word_embeddings: true,
    };
    const c = LlamaConfig.fromHF(json);
    expect(c).toMatchObject({ numKeyValueHeads: 1, ropeTheta: 500000, tieWordEmbeddings: true });
    expect(c.ropeScaling).toEqual({
      type: 'llama3',
      factor: 8,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8,
    });
    expect(() => LlamaConfig.fromHF({ ...json, rope_scaling: { rope_type: 'yarn', factor: 2 } })).toThrow(/rope types/);
    expect(() => LlamaConfig.fromHF({ ...json, num_key_value_heads: 3 })).not.toThrow(); // resolve() checks it
    expect(() => new Llama(LlamaConfig.fromHF({ ...json, num_key_value_heads: 3 }))).toThrow(/must divide/);
    expect(() => modelFromHFConfig({ model_type: 'bert' })).toThrow(/not supported/);
  });
});

describe('loadHFStateDict', () => {
  const gptWeights = () => readSafetensors(path.join(fixtures, 'gpt2-tiny', 'model.safetensors'));

  it('accepts GPT-2 names without the transformer. prefix, a tied lm_head copy and attn.bias buffers', () => {
    const config = GPTConfig.fromHF({
      ...gptJSON,
      vocab_size: 256,
      n_positions: 64,
      n_embd: 64,
      n_layer: 2,
      n_head: 4,
    });
    const reference = new GPT(config);
    loadHFStateDict(reference, gptWeights());
    const bare = new Map<string, SafetensorsTensor>();
    for (const [name, t] of gptWeights()) bare.set(name.replace(/^transformer\./, ''), t);
    bare.set('lm_head.weight', gptWeights().get('transformer.wte.weight')!);
    bare.set('h.0.attn.bias', { dtype: 'F32', shape: [1, 1, 2, 2], data: new Float32Array([1, 0, 1, 1]) });
    manualSeed(77);
    const model = new GPT(config);
    loadHFStateDict(model, bare);
    const want = reference.stateDict();
    for (const [name, v] of Object.entries(model.stateDict())) expect(v.values, name).toEqual(want[name].values);
    reference.dispose();
    model.dispose();
  });

  it('lists every missing, unexpected and mis-shaped name, and an lm_head that is not tied', () => {
    const config = GPTConfig.fromHF({
      ...gptJSON,
      vocab_size: 256,
      n_positions: 64,
      n_embd: 64,
      n_layer: 2,
      n_head: 4,
    });
    const model = new GPT(config);
    const w = gptWeights();
    w.delete('transformer.h.1.mlp.c_fc.bias');
    w.set('transformer.h.9.mlp.c_fc.bias', { dtype: 'F32', shape: [1], data: new Float32Array(1) });
    w.set('transformer.ln_f.bias', { dtype: 'F32', shape: [3], data: new Float32Array(3) });
    w.set('lm_head.weight', { dtype: 'F32', shape: [256, 64], data: new Float32Array(256 * 64) });
    let message = '';
    try {
      loadHFStateDict(model, w);
    } catch (e) {
      expect(e).toBeInstanceOf(CheckpointError);
      message = (e as Error).message;
    }
    expect(message).toMatch(/missing "transformer\.h\.1\.mlp\.c_fc\.bias"/);
    expect(message).toMatch(/unexpected "transformer\.h\.9\.mlp\.c_fc\.bias"/);
    expect(message).toMatch(/"transformer\.ln_f\.bias": shape \[3\] in checkpoint, \[64\] in model/);
    expect(message).toMatch(/lm_head\.weight" differs from the tied/);
    expect(message).not.toMatch(/missing "transformer\.ln_f\.bias"/);
    const half = gptWeights();
    half.set('transformer.wpe.weight', { dtype: 'BF16', shape: [64, 64], data: new Uint16Array(64 * 64) });
    expect(() => loadHFStateDict(model, half)).toThrow(/is BF16: convert it to fp32 with safetensorToFloat32/);
    model.dispose();
  });

  it('loads the Llama fixture (untied lm_head) and rejects it for a tied config', () => {
    const weights = readSafetensors(path.join(fixtures, 'llama-tiny', 'model.safetensors'));
    const json = {
      model_type: 'llama',
      vocab_size: 256,
      hidden_size: 64,
      intermediate_size: 168,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 64,
    };
    const model = modelFromHFConfig(json);
    loadHFStateDict(model, weights);
    expect((model as Llama).lmHead!.weight.values()).toEqual(weights.get('lm_head.weight')!.data);
    const tied = modelFromHFConfig({ ...json, tie_word_embeddings: true });
    expect(() => loadHFStateDict(tied, weights)).toThrow(/lm_head\.weight" differs from the tied "model\.embed_tokens/);
    model.dispose();
    tied.dispose();
  });
});

describe('ZeRO-3 style leaf recomputation', () => {
  it('gives the same gradients when leaves re-run in backward (ids must outlive forward)', () => {
    for (const model of [
      new GPT({ vocabSize: 30, blockSize: 8, nEmbd: 8, nLayer: 1, nHead: 2 }),
      new Llama({
        vocabSize: 30,
        hiddenSize: 8,
        intermediateSize: 12,
        numHiddenLayers: 1,
        numAttentionHeads: 2,
        numKeyValueHeads: 1,
        maxPositionEmbeddings: 8,
      }),
    ]) {
      const run = (recompute: boolean) => {
        const grads = new Map<string, Float32Array>();
        const onGrad = (p: Parameter, g: tf.Tensor) => {
          const v = g.dataSync() as Float32Array;
          const acc = grads.get(p.name);
          if (acc) for (let i = 0; i < v.length; i++) acc[i] += v[i];
          else grads.set(p.name, Float32Array.from(v));
        };
        const access = recompute ? { recomputeLeaves: true, acquire: materializedAccess.acquire } : undefined;
        const ids = Int32Array.from([1, 5, 9, 2, 29, 0, 3, 3, 7, 8]);
        const { loss } = backwardWithHooks(() => model.loss({ inputIds: ids, shape: [2, 5] }), onGrad, { access });
        return { loss, grads };
      };
      const plain = run(false);
      const recomputed = run(true);
      expect(recomputed.loss).toBeCloseTo(plain.loss, 6);
      for (const [n, g] of plain.grads) expect(relL2(recomputed.grads.get(n)!, g), n).toBeLessThan(1e-6);
      model.dispose();
    }
  });
});
