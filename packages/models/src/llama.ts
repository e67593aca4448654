/**
 * Llama (Hugging Face `LlamaForCausalLM` conventions): RMSNorm, RoPE with `rotate_half` pairing and
 * `rope_theta`, SwiGLU MLP, grouped-query attention, no biases, torch [out, in] weights, untied `lm_head`
 * unless `tieWordEmbeddings`.
 */
import { ConfigError, type ConfigIssue, Dropout, Embedding, Linear, Module, RMSNorm, tf } from '@zeroflow/core';
import { CausalLM } from './causal-lm.js';
import { applyRope, causalAttention, type RopeScaling, type RopeTables, repeatKV, ropeTables } from './functional.js';
import { type HFConfigJSON, hfKey, hfNumber, hfOptionalNumber, throwIssues } from './hf-config.js';
import { ModuleList } from './module-list.js';

/** Llama hyperparameters (camelCase of HF's `LlamaConfig`). */
export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  /** Key/value heads for grouped-query attention; default numAttentionHeads. */
  numKeyValueHeads?: number;
  /** Default hiddenSize / numAttentionHeads. */
  headDim?: number;
  /** Context length. */
  maxPositionEmbeddings: number;
  /** Default 1e-6. */
  rmsNormEps?: number;
  /** Default 10000. */
  ropeTheta?: number;
  ropeScaling?: RopeScaling | null;
  /** Default false: a separate `lm_head.weight`. */
  tieWordEmbeddings?: boolean;
  /** Biases on q/k/v/o projections (HF `attention_bias`, default false). */
  attentionBias?: boolean;
  /** Biases on gate/up/down (HF `mlp_bias`, default false). */
  mlpBias?: boolean;
  /** Dropout on attention probabilities (default 0). */
  attentionDropout?: number;
  /** Std of the normal init (0.02). */
  initializerRange?: number;
}

/** A LlamaConfig with every default filled in. */
export type ResolvedLlamaConfig = Required<LlamaConfig>;

export const LlamaConfig = {
  /** Fills defaults and checks the numbers; throws ConfigError listing every problem. */
  resolve(c: LlamaConfig): ResolvedLlamaConfig {
    const r: ResolvedLlamaConfig = {
      ...c,
      numKeyValueHeads: c.numKeyValueHeads ?? c.numAttentionHeads,
      headDim: c.headDim ?? c.hiddenSize / c.numAttentionHeads,
      rmsNormEps: c.rmsNormEps ?? 1e-6,
      ropeTheta: c.ropeTheta ?? 10000,
      ropeScaling: c.ropeScaling ?? null,
      tieWordEmbeddings: c.tieWordEmbeddings ?? false,
      attentionBias: c.attentionBias ?? false,
      mlpBias: c.mlpBias ?? false,
      attentionDropout: c.attentionDropout ?? 0,
      initializerRange: c.initializerRange ?? 0.02,
    };
    const issues: ConfigIssue[] = [];
    const ints = [
      'vocabSize',
      'hiddenSize',
      'intermediateSize',
      'numHiddenLayers',
      'numAttentionHeads',
      'numKeyValueHeads',
      'headDim',
      'maxPositionEmbeddings',
    ] as const;
    for (const key of ints) {
      if (!Number.isInteger(r[key]) || r[key] < 1) {
        issues.push({ path: `LlamaConfig.${key}`, value: r[key], rule: 'must be an integer >= 1' });
      }
    }
    if (r.numAttentionHeads % r.numKeyValueHeads !== 0) {
      issues.push({
        path: 'LlamaConfig.numKeyValueHeads',
        value: r.numKeyValueHeads,
        rule: `must divide numAttentionHeads (${r.numAttentionHeads})`,
      });
    }
    if (r.headDim % 2 !== 0)
      issues.push({ path: 'LlamaConfig.headDim', value: r.headDim, rule: 'must be even (RoPE)' });
    if (!(r.attentionDropout >= 0 && r.attentionDropout < 1)) {
      issues.push({ path: 'LlamaConfig.attentionDropout', value: r.attentionDropout, rule: 'must be in [0, 1)' });
    }
    if (issues.length) throw new ConfigError(issues);
    return r;
  },

  /** Reads a Hugging Face Llama `config.json` object. */
  fromHF(json: HFConfigJSON): LlamaConfig {
    const issues: ConfigIssue[] = [];
    if (json.model_type !== undefined && json.model_type !== 'llama') {
      issues.push({ path: 'model_type', value: json.model_type, rule: 'must be "llama" for Llama' });
    }
    const act = hfKey(json, 'hidden_act');
    if (act !== undefined && act !== 'silu')
      issues.push({ path: 'hidden_act', value: act, rule: 'only "silu" is supported' });
    const config: LlamaConfig = {
      vocabSize: hfNumber(json, ['vocab_size'], issues),
      hiddenSize: hfNumber(json, ['hidden_size'], issues),
      intermediateSize: hfNumber(json, ['intermediate_size'], issues),
      numHiddenLayers: hfNumber(json, ['num_hidden_layers'], issues),
      numAttentionHeads: hfNumber(json, ['num_attention_heads'], issues),
      numKeyValueHeads: hfOptionalNumber(json, 'num_key_value_heads', issues),
      headDim: hfOptionalNumber(json, 'head_dim', issues),
      maxPositionEmbeddings: hfNumber(json, ['max_position_embeddings'], issues),
      rmsNormEps: hfOptionalNumber(json, 'rms_norm_eps', issues),
      ropeTheta: hfOptionalNumber(json, 'rope_theta', issues),
      ropeScaling: ropeScalingFromHF(hfKey(json, 'rope_scaling'), issues),
      tieWordEmbeddings: hfKey(json, 'tie_word_embeddings') === true,
      attentionBias: hfKey(json, 'attention_bias') === true,
      mlpBias: hfKey(json, 'mlp_bias') === true,
      attentionDropout: hfOptionalNumber(json, 'attention_dropout', issues),
      initializerRange: hfOptionalNumber(json, 'initializer_range', issues),
    };
    throwIssues(issues);
    return config;
  },
};

function ropeScalingFromHF(raw: unknown, issues: ConfigIssue[]): RopeScaling | null {
  if (raw === undefined) return null;
  const s = raw as Record<string, unknown>;
  const kind = s.rope_type ?? s.type;
  const num = (k: string): number => {
    if (typeof s[k] !== 'number') issues.push({ path: `rope_scaling.${k}`, value: s[k], rule: 'required number' });
    return s[k] as number;
  };
  if (kind === 'default') return null;
  if (kind === 'linear') return { type: 'linear', factor: num('factor') };
  if (kind === 'llama3') {
    return {
      type: 'llama3',
      factor: num('factor'),
      lowFreqFactor: num('low_freq_factor'),
      highFreqFactor: num('high_freq_factor'),
      originalMaxPositionEmbeddings: num('original_max_position_embeddings'),
    };
  }
  issues.push({ path: 'rope_scaling', value: raw, rule: 'supported rope types: default, linear, llama3' });
  return null;
}

/** Grouped-query self-attention with rotary positions. */
export class LlamaAttention extends Module {
  readonly qProj: Linear;
  readonly kProj: Linear;
  readonly vProj: Linear;
  readonly oProj: Linear;
  readonly attnDropout: Dropout;

  constructor(
    private readonly config: ResolvedLlamaConfig,
    private readonly rope: RopeTables,
  ) {
    super();
    const { hiddenSize: c, numAttentionHeads: h, numKeyValueHeads: hkv, headDim: d } = config;
    const opts = { bias: config.attentionBias, layout: 'out_in', initStd: config.initializerRange } as const;
    this.qProj = this.registerModule('q_proj', new Linear(c, h * d, opts));
    this.kProj = this.registerModule('k_proj', new Linear(c, hkv * d, opts));
    this.vProj = this.registerModule('v_proj', new Linear(c, hkv * d, opts));
    this.oProj = this.registerModule('o_proj', new Linear(h * d, c, opts));
    this.attnDropout = this.registerModule('attn_dropout', new Dropout(config.attentionDropout));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [b, t] = x.shape;
      const { numAttentionHeads: h, numKeyValueHeads: hkv, headDim: d } = this.config;
      const split = (y: tf.Tensor, heads: number) => tf.transpose(tf.reshape(y, [b, t, heads, d]), [0, 2, 1, 3]);
      const q = applyRope(split(this.qProj.forward(x), h), this.rope);
      const k = applyRope(split(this.kProj.forward(x), hkv), this.rope);
      const v = split(this.vProj.forward(x), hkv);
      // Repeat kv heads so the batched matmuls never broadcast (tfjs's BatchMatMul gradient bug).
      const y = causalAttention(q, repeatKV(k, h / hkv), repeatKV(v, h / hkv), (p) => this.attnDropout.forward(p));
      return this.oProj.forward(tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [b, t, h * d]));
    });
  }
}

/** SwiGLU feed-forward: down(silu(gate(x)) * up(x)). */
export class LlamaMLP extends Module {
  readonly gateProj: Linear;
  readonly upProj: Linear;
  readonly downProj: Linear;

  constructor(config: ResolvedLlamaConfig) {
    super();
    const { hiddenSize: c, intermediateSize: m } = config;
    const opts = { bias: config.mlpBias, layout: 'out_in', initStd: config.initializerRange } as const;
    this.gateProj = this.registerModule('gate_proj', new Linear(c, m, opts));
    this.upProj = this.registerModule('up_proj', new Linear(c, m, opts));
    this.downProj = this.registerModule('down_proj', new Linear(m, c, opts));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const gate = this.gateProj.forward(x);
      return this.downProj.forward(tf.mul(tf.mul(gate, tf.sigmoid(gate)), this.upProj.forward(x)));
    });
  }
}

/** x + self_attn(input_layernorm(x)), then + mlp(post_attention_layernorm(.)). */
export class LlamaDecoderLayer extends Module {
  readonly selfAttn: LlamaAttention;
  readonly mlp: LlamaMLP;
  readonly inputLayernorm: RMSNorm;
  readonly postAttentionLayernorm: RMSNorm;

  constructor(config: ResolvedLlamaConfig, rope: RopeTables) {
    super();
    this.selfAttn = this.registerModule('self_attn', new LlamaAttention(config, rope));
    this.mlp = this.registerModule('mlp', new LlamaMLP(config));
    this.inputLayernorm = this.registerModule('input_layernorm', new RMSNorm(config.hiddenSize, config.rmsNormEps));
    this.postAttentionLayernorm = this.registerModule(
      'post_attention_layernorm',
      new RMSNorm(config.hiddenSize, config.rmsNormEps),
    );
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const h = tf.add(x, this.selfAttn.forward(this.inputLayernorm.forward(x)));
      return tf.add(h, this.mlp.forward(this.postAttentionLayernorm.forward(h)));
    });
  }
}

/** HF's `LlamaModel` (registered as `model`): embed_tokens, layers, norm. */
export class LlamaModel extends Module {
  readonly embedTokens: Embedding;
  readonly layers: ModuleList<LlamaDecoderLayer>;
  readonly norm: RMSNorm;

  constructor(config: ResolvedLlamaConfig, rope: RopeTables) {
    super();
    this.embedTokens = this.registerModule(
      'embed_tokens',
      new Embedding(config.vocabSize, config.hiddenSize, { initStd: config.initializerRange }),
    );
    const layers = Array.from({ length: config.numHiddenLayers }, () => new LlamaDecoderLayer(config, rope));
    this.layers = this.registerModule('layers', new ModuleList(layers));
    this.norm = this.registerModule('norm', new RMSNorm(config.hiddenSize, config.rmsNormEps));
  }
}

/** Llama language model. Parameter names are Hugging Face's (`model.layers.0.self_attn.q_proj.weight`, ...). */
export class Llama extends CausalLM {
  readonly config: ResolvedLlamaConfig;
  readonly model: LlamaModel;
  /** The output projection; null when tied to `model.embed_tokens`. */
  readonly lmHead: Linear | null;

  constructor(config: LlamaConfig) {
    super();
    this.config = LlamaConfig.resolve(config);
    const c = this.config;
    const rope = ropeTables(c.maxPositionEmbeddings, c.headDim, c.ropeTheta, c.ropeScaling);
    this.model = this.registerModule('model', new LlamaModel(c, rope));
    this.lmHead = c.tieWordEmbeddings
      ? null
      : this.registerModule(
          'lm_head',
          new Linear(c.hiddenSize, c.vocabSize, { bias: false, layout: 'out_in', initStd: c.initializerRange }),
        );
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }

  get blockSize(): number {
    return this.config.maxPositionEmbeddings;
  }

  forward(inputIds: tf.Tensor): tf.Tensor {
    this.checkInputIds(inputIds);
    const { embedTokens, layers, norm } = this.model;
    return tf.tidy(() => {
      let x = embedTokens.forward(inputIds);
      for (const layer of layers) x = this.runBlock((a) => layer.forward(a), x);
      const h = norm.forward(x);
      return this.lmHead ? this.lmHead.forward(h) : embedTokens.project(h);
    });
  }
}
