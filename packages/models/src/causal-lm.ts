/**
 * What GPT and Llama share: the batch-facing `loss`, sampling with `generate`, and activation checkpointing of
 * transformer blocks.
 */
import { checkpoint, Generator, Module, tf } from '@zeroflow/core';
import { crossEntropy } from './functional.js';

/**
 * A micro-batch of token ids. Typed arrays need `shape` ([B, T]; a flat array without it is one sequence).
 * With `targets` (already shifted by the data pipeline) the loss is CE(logits, targets); without, HF-style
 * CE(logits[:, :-1], inputIds[:, 1:]). Targets < 0 (HF's -100) are ignored.
 */
export interface CausalLMBatch {
  inputIds: tf.Tensor | Int32Array;
  targets?: tf.Tensor | Int32Array;
  shape?: [number, number];
}

/** Options of `generate`. */
export interface GenerateOptions {
  /** Number of tokens to sample after the prompt. */
  maxNewTokens: number;
  /** Softmax temperature (default 1); 0 means greedy (argmax). */
  temperature?: number;
  /** Sample only among the k most likely tokens. */
  topK?: number;
  /** Seed of the sampling generator (default 0): the same seed gives the same tokens. */
  seed?: number;
}

/** A decoder-only language model: `forward(ids [B,T] int32) -> logits [B,T,V]`. */
export abstract class CausalLM extends Module {
  /** Vocabulary size (the logits' last dim). */
  abstract readonly vocabSize: number;
  /** Longest context the model accepts (positions). */
  abstract readonly blockSize: number;
  private checkpointBlocks = false;
  /** Id tensors built from typed arrays by `loss`: kept alive until backward is surely over (next call). */
  private batchTensors: tf.Tensor[] = [];

  /** Logits [B, T, V] for int32 ids [B, T]. The caller owns (disposes) the result. */
  abstract forward(inputIds: tf.Tensor): tf.Tensor;

  /** Wraps each transformer block in core's `checkpoint` (recomputed in backward) when enabled. */
  setActivationCheckpointing(enabled: boolean): this {
    this.checkpointBlocks = enabled;
    return this;
  }

  get activationCheckpointing(): boolean {
    return this.checkpointBlocks;
  }

  /** Runs one block, checkpointed if enabled. */
  protected runBlock(block: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor): tf.Tensor {
    return this.checkpointBlocks ? checkpoint(block, [x]) : block(x);
  }

  /** Throws unless ids are an int32 [B, T] tensor with 1 <= T <= blockSize. */
  protected checkInputIds(ids: tf.Tensor): void {
    if (ids.rank !== 2 || ids.dtype !== 'int32') {
      throw new TypeError(
        `${this.constructor.name}.forward: expected int32 ids [B, T], got ${ids.dtype} [${ids.shape}]`,
      );
    }
    const t = (ids.shape as number[])[1];
    if (t < 1 || t > this.blockSize) {
      throw new RangeError(`${this.constructor.name}.forward: sequence length ${t} is outside [1, ${this.blockSize}]`);
    }
  }

  /** Mean cross-entropy of a batch (see `CausalLMBatch`), as a scalar to differentiate. */
  loss(batch: CausalLMBatch): tf.Scalar {
    tf.dispose(this.batchTensors);
    this.batchTensors = [];
    const ids = this.idTensor(batch.inputIds, batch.shape, 'inputIds');
    const targets = batch.targets === undefined ? null : this.idTensor(batch.targets, batch.shape, 'targets');
    if (targets && targets.shape.join(',') !== ids.shape.join(',')) {
      throw new RangeError(`loss: targets [${targets.shape}] and inputIds [${ids.shape}] differ in shape`);
    }
    if (!targets && (ids.shape as number[])[1] < 2)
      throw new RangeError('loss: without targets, sequences need at least 2 tokens');
    return tf.tidy(() => {
      const logits = this.forward(ids);
      if (targets) return crossEntropy(logits, targets);
      const [b, t, v] = logits.shape as number[];
      return crossEntropy(tf.slice(logits, [0, 0, 0], [b, t - 1, v]), tf.slice(ids, [0, 1], [b, t - 1]));
    });
  }

  private idTensor(ids: tf.Tensor | Int32Array, shape: [number, number] | undefined, what: string): tf.Tensor {
    if (!(ids instanceof Int32Array)) {
      if (ids.dtype !== 'int32' || ids.rank !== 2) {
        throw new TypeError(`loss: ${what} must be int32 [B, T], got ${ids.dtype} [${ids.shape}]`);
      }
      return ids;
    }
    const [b, t] = shape ?? [1, ids.length];
    if (b * t !== ids.length) throw new RangeError(`loss: ${what} has ${ids.length} ids, shape [${b}, ${t}]`);
    // Leaf layers may re-run in backward (ZeRO-3 recomputation) and read the ids again, so they must
    // outlive this call: released at the next call or by dispose().
    const tensor = tf.keep(tf.tensor2d(ids, [b, t], 'int32'));
    this.batchTensors.push(tensor);
    return tensor;
  }

  /**
   * Samples `maxNewTokens` tokens after `promptIds` in eval mode (the training flag is restored afterwards),
   * feeding at most the last `blockSize` tokens. Returns the prompt followed by the new tokens.
   */
  generate(promptIds: number[], opts: GenerateOptions): number[] {
    if (promptIds.length === 0) throw new RangeError('generate: the prompt must hold at least one token');
    const temperature = opts.temperature ?? 1;
    if (!(temperature >= 0)) throw new RangeError(`generate: temperature must be >= 0, got ${temperature}`);
    const rng = new Generator(opts.seed ?? 0);
    const wasTraining = this.training;
    this.eval();
    const tokens = promptIds.slice();
    try {
      for (let step = 0; step < opts.maxNewTokens; step++) {
        const context = tokens.slice(-this.blockSize);
        const last = tf.tidy(() => {
          const ids = tf.tensor2d(context, [1, context.length], 'int32');
          return tf.slice(this.forward(ids), [0, context.length - 1, 0], [1, 1, this.vocabSize]);
        });
        const logits = Float32Array.from(last.dataSync());
        last.dispose();
        tokens.push(sampleToken(logits, temperature, opts.topK, rng));
      }
    } finally {
      this.train(wasTraining);
    }
    return tokens;
  }

  override dispose(): void {
    tf.dispose(this.batchTensors);
    this.batchTensors = [];
    super.dispose();
  }
}

/** Picks a token from logits: argmax at temperature 0, else a draw from softmax(logits / T) over the top k. */
export function sampleToken(
  logits: Float32Array,
  temperature: number,
  topK: number | undefined,
  rng: Generator,
): number {
  const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  if (temperature === 0) return order[0];
  const k = topK === undefined ? order.length : Math.max(1, Math.min(topK, order.length));
  const candidates = order.slice(0, k);
  const max = logits[candidates[0]];
  const weights = candidates.map((i) => Math.exp((logits[i] - max) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let u = rng.uniform() * total;
  for (let j = 0; j < k; j++) {
    u -= weights[j];
    if (u < 0) return candidates[j];
  }
  return candidates[k - 1];
}
