/**
 * GPT-2 (Hugging Face `GPT2LMHeadModel` conventions): pre-LayerNorm blocks, learned positions, gelu_new, tied
 * head (`wte.project`, no `lm_head` parameter), Conv1D weights in [in, out] layout, HF parameter names.
 */
import {
  ConfigError,
  type ConfigIssue,
  causalSelfAttention,
  Dropout,
  Embedding,
  hasFusedAttention,
  LayerNorm,
  Linear,
  Module,
  tf,
} from '@zeroflow/core';
import { CausalLM } from './causal-lm.js';
import { type ActivationName, activation, causalAttention } from './functional.js';
import { type HFConfigJSON, hfKey, hfNumber, hfOptionalNumber, throwIssues } from './hf-config.js';
import { ModuleList } from './module-list.js';

/** GPT-2 hyperparameters (camelCase of HF's `GPT2Config`). */
export interface GPTConfig {
  vocabSize: number;
  /** Context length (HF `n_positions`). Either this or `blockSize`. */
  nPositions?: number;
  /** Alias of `nPositions` (nanoGPT's name). */
  blockSize?: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  /** MLP width (HF `n_inner`); default 4 * nEmbd. */
  nInner?: number;
  /** Default 1e-5. */
  layerNormEpsilon?: number;
  /** Default dropout of residual, embedding and attention paths (0). */
  dropout?: number;
  residDropout?: number;
  embdDropout?: number;
  attnDropout?: number;
  /** Std of the normal init (0.02); c_proj weights get 0.02 / sqrt(2 nLayer) as in HF. */
  initializerRange?: number;
  /** Default `gelu_new`. */
  activationFunction?: ActivationName;
}

/** A GPTConfig with every default filled in. */
export type ResolvedGPTConfig = Required<Omit<GPTConfig, 'blockSize'>>;

const ACTIVATIONS: ActivationName[] = ['gelu_new', 'gelu_pytorch_tanh', 'gelu', 'relu', 'silu', 'swish'];

export const GPTConfig = {
  /** Fills defaults and checks the numbers; throws ConfigError listing every problem. */
  resolve(c: GPTConfig): ResolvedGPTConfig {
    const dropout = c.dropout ?? 0;
    const r: ResolvedGPTConfig = {
      vocabSize: c.vocabSize,
      nPositions: c.nPositions ?? c.blockSize ?? Number.NaN,
      nEmbd: c.nEmbd,
      nLayer: c.nLayer,
      nHead: c.nHead,
      nInner: c.nInner ?? 4 * c.nEmbd,
      layerNormEpsilon: c.layerNormEpsilon ?? 1e-5,
      dropout,
      residDropout: c.residDropout ?? dropout,
      embdDropout: c.embdDropout ?? dropout,
      attnDropout: c.attnDropout ?? dropout,
      initializerRange: c.initializerRange ?? 0.02,
      activationFunction: c.activationFunction ?? 'gelu_new',
    };
    const issues: ConfigIssue[] = [];
    for (const key of ['vocabSize', 'nPositions', 'nEmbd', 'nLayer', 'nHead', 'nInner'] as const) {
      if (!Number.isInteger(r[key]) || r[key] < 1)
        issues.push({ path: `GPTConfig.${key}`, value: r[key], rule: 'must be an integer >= 1' });
    }
    if (r.nEmbd % r.nHead !== 0) {
      issues.push({ path: 'GPTConfig.nEmbd', value: r.nEmbd, rule: `must be divisible by nHead (${r.nHead})` });
    }
    for (const key of ['residDropout', 'embdDropout', 'attnDropout'] as const) {
      if (!(r[key] >= 0 && r[key] < 1))
        issues.push({ path: `GPTConfig.${key}`, value: r[key], rule: 'must be in [0, 1)' });
    }
    if (!ACTIVATIONS.includes(r.activationFunction)) {
      issues.push({
        path: 'GPTConfig.activationFunction',
        value: r.activationFunction,
        rule: `must be one of ${ACTIVATIONS.join(', ')}`,
      });
    }
    if (issues.length) throw new ConfigError(issues);
    return r;
  },

  /** Reads a Hugging Face GPT-2 `config.json` object. */
  fromHF(json: HFConfigJSON): GPTConfig {
    const issues: ConfigIssue[] = [];
    if (json.model_type !== undefined && json.model_type !== 'gpt2') {
      issues.push({ path: 'model_type', value: json.model_type, rule: 'must be "gpt2" for GPT' });
    }
    for (const unsupported of ['scale_attn_by_inverse_layer_idx', 'reorder_and_upcast_attn'] as const) {
      if (json[unsupported])
        issues.push({ path: unsupported, value: json[unsupported], rule: 'is not supported (must be false)' });
    }
    if (json.scale_attn_weights === false) {
      issues.push({ path: 'scale_attn_weights', value: false, rule: 'is not supported (must be true)' });
    }
    if (json.tie_word_embeddings === false) {
      issues.push({ path: 'tie_word_embeddings', value: false, rule: 'GPT-2 ties its head to wte: must be true' });
    }
    const config: GPTConfig = {
      vocabSize: hfNumber(json, ['vocab_size'], issues),
      nPositions: hfNumber(json, ['n_positions', 'n_ctx', 'max_position_embeddings'], issues),
      nEmbd: hfNumber(json, ['n_embd', 'hidden_size'], issues),
      nLayer: hfNumber(json, ['n_layer', 'num_hidden_layers'], issues),
      nHead: hfNumber(json, ['n_head', 'num_attention_heads'], issues),
      nInner: hfOptionalNumber(json, 'n_inner', issues),
      layerNormEpsilon: hfOptionalNumber(json, 'layer_norm_epsilon', issues),
      residDropout: hfOptionalNumber(json, 'resid_pdrop', issues),
      embdDropout: hfOptionalNumber(json, 'embd_pdrop', issues),
      attnDropout: hfOptionalNumber(json, 'attn_pdrop', issues),
      initializerRange: hfOptionalNumber(json, 'initializer_range', issues),
      activationFunction: hfKey(json, 'activation_function') as ActivationName | undefined,
    };
    throwIssues(issues);
    return config;
  },
};

/** Causal self-attention with fused qkv (`c_attn`) and output projection (`c_proj`). */
export class GPTAttention extends Module {
  readonly cAttn: Linear;
  readonly cProj: Linear;
  readonly attnDropout: Dropout;
  readonly residDropout: Dropout;

  constructor(private readonly config: ResolvedGPTConfig) {
    super();
    const { nEmbd, initializerRange, nLayer } = config;
    this.cAttn = this.registerModule(
      'c_attn',
      new Linear(nEmbd, 3 * nEmbd, { layout: 'in_out', initStd: initializerRange }),
    );
    this.cProj = this.registerModule(
      'c_proj',
      new Linear(nEmbd, nEmbd, { layout: 'in_out', initStd: initializerRange / Math.sqrt(2 * nLayer) }),
    );
    this.attnDropout = this.registerModule('attn_dropout', new Dropout(config.attnDropout));
    this.residDropout = this.registerModule('resid_dropout', new Dropout(config.residDropout));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [b, t, c] = x.shape;
      const h = this.config.nHead;
      const qkv = this.cAttn.forward(x) as tf.Tensor3D;
      let y: tf.Tensor;
      if ((this.attnDropout.p === 0 || !this.attnDropout.training) && hasFusedAttention()) {
        // one kernel each way straight from the packed projection, heads merged: no split, transposes or scores
        y = causalSelfAttention(qkv, h);
      } else {
        const heads = tf.split(qkv, 3, 2).map((part) => tf.transpose(tf.reshape(part, [b, t, h, c / h]), [0, 2, 1, 3]));
        const merged = causalAttention(heads[0], heads[1], heads[2], (p) => this.attnDropout.forward(p));
        y = tf.reshape(tf.transpose(merged, [0, 2, 1, 3]), [b, t, c]);
      }
      return this.residDropout.forward(this.cProj.forward(y));
    });
  }
}

/** The feed-forward block: c_fc, activation, c_proj, dropout. */
export class GPTMLP extends Module {
  readonly cFc: Linear;
  readonly cProj: Linear;
  readonly dropout: Dropout;

  constructor(private readonly config: ResolvedGPTConfig) {
    super();
    const { nEmbd, nInner, initializerRange, nLayer } = config;
    this.cFc = this.registerModule('c_fc', new Linear(nEmbd, nInner, { layout: 'in_out', initStd: initializerRange }));
    this.cProj = this.registerModule(
      'c_proj',
      new Linear(nInner, nEmbd, { layout: 'in_out', initStd: initializerRange / Math.sqrt(2 * nLayer) }),
    );
    this.dropout = this.registerModule('dropout', new Dropout(config.residDropout));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() =>
      this.dropout.forward(this.cProj.forward(activation(this.config.activationFunction, this.cFc.forward(x)))),
    );
  }
}

/** x + attn(ln_1(x)), then + mlp(ln_2(.)). */
export class GPTBlock extends Module {
  readonly ln1: LayerNorm;
  readonly attn: GPTAttention;
  readonly ln2: LayerNorm;
  readonly mlp: GPTMLP;

  constructor(config: ResolvedGPTConfig) {
    super();
    this.ln1 = this.registerModule('ln_1', new LayerNorm(config.nEmbd, config.layerNormEpsilon));
    this.attn = this.registerModule('attn', new GPTAttention(config));
    this.ln2 = this.registerModule('ln_2', new LayerNorm(config.nEmbd, config.layerNormEpsilon));
    this.mlp = this.registerModule('mlp', new GPTMLP(config));
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const h = tf.add(x, this.attn.forward(this.ln1.forward(x)));
      return tf.add(h, this.mlp.forward(this.ln2.forward(h)));
    });
  }
}

/** HF's `GPT2Model` (registered as `transformer`): embeddings, blocks `h`, final `ln_f`. */
export class GPTTransformer extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly drop: Dropout;
  readonly h: ModuleList<GPTBlock>;
  readonly lnF: LayerNorm;

  constructor(config: ResolvedGPTConfig) {
    super();
    this.wte = this.registerModule(
      'wte',
      new Embedding(config.vocabSize, config.nEmbd, { initStd: config.initializerRange }),
    );
    this.wpe = this.registerModule(
      'wpe',
      new Embedding(config.nPositions, config.nEmbd, { initStd: config.initializerRange }),
    );
    this.drop = this.registerModule('drop', new Dropout(config.embdDropout));
    const blocks = Array.from({ length: config.nLayer }, () => new GPTBlock(config));
    this.h = this.registerModule('h', new ModuleList(blocks));
    this.lnF = this.registerModule('ln_f', new LayerNorm(config.nEmbd, config.layerNormEpsilon));
  }
}

/** GPT-2 language model. Parameter names are Hugging Face's (`transformer.h.0.attn.c_attn.weight`, ...). */
export class GPT extends CausalLM {
  readonly config: ResolvedGPTConfig;
  readonly transformer: GPTTransformer;
  /** All position ids [nPositions], kept: position rows are gathered in full and sliced (see forward). */
  private allPositions: tf.Tensor | null = null;

  constructor(config: GPTConfig) {
    super();
    this.config = GPTConfig.resolve(config);
    this.transformer = this.registerModule('transformer', new GPTTransformer(this.config));
  }

  get vocabSize(): number {
    return this.config.vocabSize;
  }

  get blockSize(): number {
    return this.config.nPositions;
  }

  forward(inputIds: tf.Tensor): tf.Tensor {
    this.checkInputIds(inputIds);
    const { wte, wpe, drop, h, lnF } = this.transformer;
    // The Embedding leaf closes over its ids and may re-run in backward (ZeRO-3 recomputation): give it one
    // long-lived id tensor rather than a per-call range that the tidy below would free before backward.
    this.allPositions ??= tf.keep(tf.range(0, this.config.nPositions, 1, 'int32'));
    const positions = this.allPositions;
    return tf.tidy(() => {
      const t = (inputIds.shape as number[])[1];
      const pos = tf.slice(wpe.forward(positions), [0, 0], [t, this.config.nEmbd]);
      let x = drop.forward(tf.add(wte.forward(inputIds), pos));
      for (const block of h) x = this.runBlock((a) => block.forward(a), x);
      return wte.project(lnF.forward(x));
    });
  }

  override dispose(): void {
    this.allPositions?.dispose();
    this.allPositions = null;
    super.dispose();
  }
}
