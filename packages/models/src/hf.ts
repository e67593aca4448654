/** Hugging Face interop: build a model from `config.json`, load weights named as in HF checkpoints. */
import { CheckpointError, type StateDict } from '@zeroflow/core';
import type { CausalLM } from './causal-lm.js';
import { GPT, GPTConfig } from './gpt.js';
import type { HFConfigJSON } from './hf-config.js';
import { Llama, LlamaConfig } from './llama.js';

/**
 * One checkpoint tensor: a safetensors entry (`{dtype, shape, data}`, as core's `readSafetensors` returns) or a
 * state-dict entry (`{shape, values}`). Only fp32 data is accepted here; convert F16/BF16 entries first with
 * core's `safetensorToFloat32`.
 */
export type HFTensor =
  | { dtype: string; shape: number[]; data: ArrayLike<unknown> }
  | { shape: number[]; values: Float32Array };

/** Checkpoint tensors by Hugging Face name. */
export type HFTensors = Map<string, HFTensor> | Record<string, HFTensor>;

/** Builds a GPT (`model_type` "gpt2") or Llama (`model_type` "llama") from a parsed HF `config.json`. */
export function modelFromHFConfig(json: HFConfigJSON): GPT | Llama {
  switch (json.model_type) {
    case 'gpt2':
      return new GPT(GPTConfig.fromHF(json));
    case 'llama':
      return new Llama(LlamaConfig.fromHF(json));
    default:
      throw new CheckpointError(
        `config.json: model_type ${JSON.stringify(json.model_type)} is not supported (gpt2, llama)`,
      );
  }
}

function float32Of(name: string, t: HFTensor): Float32Array {
  if ('values' in t) return t.values;
  if (t.dtype !== 'F32' || !(t.data instanceof Float32Array)) {
    throw new CheckpointError(
      `"${name}" is ${t.dtype}: convert it to fp32 with safetensorToFloat32 (from @zeroflow/core) before loading`,
    );
  }
  return t.data;
}

/** HF buffers that are not parameters: GPT-2's causal-mask buffers, old Llama rotary caches. */
const NON_PARAMETER_KEYS = [/\.attn\.bias$/, /\.attn\.masked_bias$/, /\.rotary_emb\.inv_freq$/];

/**
 * Loads Hugging Face weights into a GPT or Llama, names mapped 1:1. GPT accepts names with or without the
 * `transformer.` prefix, and a `lm_head.weight` equal to the tied `wte` (as some exports contain); the same for
 * a tied Llama's `lm_head.weight`. Non-parameter buffers (GPT-2's `attn.bias`) are skipped. Throws a
 * CheckpointError listing every missing, unexpected or mis-shaped name.
 */
export function loadHFStateDict(model: CausalLM, tensors: HFTensors): void {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const expected = new Map(model.namedParameters().map(([n, p]) => [n, p.shape]));
  const isGPT = model instanceof GPT;
  const tiedHeadSource = isGPT
    ? 'transformer.wte.weight'
    : model instanceof Llama && model.lmHead === null
      ? 'model.embed_tokens.weight'
      : null;
  const sd: StateDict = {};
  const problems: string[] = [];
  let tiedHead: Float32Array | null = null;
  for (const [rawName, t] of entries) {
    if (NON_PARAMETER_KEYS.some((re) => re.test(rawName))) continue;
    const name =
      isGPT && !rawName.startsWith('transformer.') && rawName !== 'lm_head.weight' ? `transformer.${rawName}` : rawName;
    if (tiedHeadSource && name === 'lm_head.weight') {
      tiedHead = float32Of(rawName, t);
      continue;
    }
    const shape = expected.get(name);
    if (!shape) {
      problems.push(`unexpected "${rawName}"`);
      continue;
    }
    if (name in sd) problems.push(`"${name}" given twice (with and without the transformer. prefix)`);
    if (shape.join(',') !== t.shape.join(',')) {
      problems.push(`"${rawName}": shape [${t.shape}] in checkpoint, [${shape}] in model`);
      continue;
    }
    sd[name] = { shape: t.shape.slice(), values: float32Of(rawName, t).slice() };
  }
  for (const name of expected.keys())
    if (!(name in sd) && !problems.some((p) => p.includes(`"${name}"`))) problems.push(`missing "${name}"`);
  if (tiedHead && tiedHeadSource && sd[tiedHeadSource]) {
    const source = sd[tiedHeadSource].values;
    if (tiedHead.length !== source.length || tiedHead.some((v, i) => v !== source[i])) {
      problems.push(`"lm_head.weight" differs from the tied "${tiedHeadSource}": this model ties its head`);
    }
  }
  if (problems.length) {
    throw new CheckpointError(
      `loadHFStateDict: ${problems.length} problem(s) with the checkpoint:\n  - ${problems.join('\n  - ')}`,
    );
  }
  model.loadStateDict(sd);
}
