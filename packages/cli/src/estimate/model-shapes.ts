/**
 * The parameters of the `@zeroflow/models` language models, computed from their hyperparameters without
 * building them: names and shapes in the order the models register them (Hugging Face names), so `zeroflow
 * estimate` counts Ψ and splits it into param groups exactly as `initialize` will.
 */

/** One parameter as the model registers it. */
export interface ParameterShape {
  name: string;
  shape: number[];
}

/** GPT-2 hyperparameters (`GPT` of `@zeroflow/models`); `nPositions` is the learned position table length. */
export interface GPTShapeSpec {
  model: 'gpt2';
  vocabSize: number;
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  /** MLP width; default 4 * nEmbd. */
  nInner?: number;
}

/** Llama hyperparameters (`Llama` of `@zeroflow/models`). */
export interface LlamaShapeSpec {
  model: 'llama';
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** Grouped-query attention; default numAttentionHeads. */
  numKeyValueHeads?: number;
  /** Default hiddenSize / numAttentionHeads. */
  headDim?: number;
  /** Default false: a separate `lm_head.weight`. */
  tieWordEmbeddings?: boolean;
  attentionBias?: boolean;
  mlpBias?: boolean;
}

export type ModelShapeSpec = GPTShapeSpec | LlamaShapeSpec;

/** GPT-2: tied head (no `lm_head`), Conv1D [in, out] weights with biases, LayerNorms with biases. */
function gptShapes(s: GPTShapeSpec): ParameterShape[] {
  const e = s.nEmbd;
  const inner = s.nInner ?? 4 * e;
  const out: ParameterShape[] = [
    { name: 'transformer.wte.weight', shape: [s.vocabSize, e] },
    { name: 'transformer.wpe.weight', shape: [s.nPositions, e] },
  ];
  const linear = (name: string, inF: number, outF: number) => {
    out.push({ name: `${name}.weight`, shape: [inF, outF] }, { name: `${name}.bias`, shape: [outF] });
  };
  const layerNorm = (name: string) => {
    out.push({ name: `${name}.weight`, shape: [e] }, { name: `${name}.bias`, shape: [e] });
  };
  for (let i = 0; i < s.nLayer; i++) {
    const h = `transformer.h.${i}`;
    layerNorm(`${h}.ln_1`);
    linear(`${h}.attn.c_attn`, e, 3 * e);
    linear(`${h}.attn.c_proj`, e, e);
    layerNorm(`${h}.ln_2`);
    linear(`${h}.mlp.c_fc`, e, inner);
    linear(`${h}.mlp.c_proj`, inner, e);
  }
  layerNorm('transformer.ln_f');
  return out;
}

/** Llama: torch [out, in] weights, optional biases, RMSNorm gains, GQA k/v widths, untied head by default. */
function llamaShapes(s: LlamaShapeSpec): ParameterShape[] {
  const c = s.hiddenSize;
  const h = s.numAttentionHeads;
  const hkv = s.numKeyValueHeads ?? h;
  const d = s.headDim ?? c / h;
  const out: ParameterShape[] = [{ name: 'model.embed_tokens.weight', shape: [s.vocabSize, c] }];
  const linear = (name: string, inF: number, outF: number, bias: boolean) => {
    out.push({ name: `${name}.weight`, shape: [outF, inF] });
    if (bias) out.push({ name: `${name}.bias`, shape: [outF] });
  };
  for (let i = 0; i < s.numHiddenLayers; i++) {
    const l = `model.layers.${i}`;
    const attnBias = s.attentionBias ?? false;
    const mlpBias = s.mlpBias ?? false;
    linear(`${l}.self_attn.q_proj`, c, h * d, attnBias);
    linear(`${l}.self_attn.k_proj`, c, hkv * d, attnBias);
    linear(`${l}.self_attn.v_proj`, c, hkv * d, attnBias);
    linear(`${l}.self_attn.o_proj`, h * d, c, attnBias);
    linear(`${l}.mlp.gate_proj`, c, s.intermediateSize, mlpBias);
    linear(`${l}.mlp.up_proj`, c, s.intermediateSize, mlpBias);
    linear(`${l}.mlp.down_proj`, s.intermediateSize, c, mlpBias);
    out.push({ name: `${l}.input_layernorm.weight`, shape: [c] });
    out.push({ name: `${l}.post_attention_layernorm.weight`, shape: [c] });
  }
  out.push({ name: 'model.norm.weight', shape: [c] });
  if (!s.tieWordEmbeddings) out.push({ name: 'lm_head.weight', shape: [s.vocabSize, c] });
  return out;
}

/** Every trainable parameter of the model, as `@zeroflow/models` registers it. */
export function modelParameterShapes(spec: ModelShapeSpec): ParameterShape[] {
  return spec.model === 'gpt2' ? gptShapes(spec) : llamaShapes(spec);
}

/** Elements of one shape. */
export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
