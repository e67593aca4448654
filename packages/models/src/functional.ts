/**
 * Parameter-free math of the reference transformers, as plain tf ops: activations, causal attention, RoPE and
 * cross-entropy. Parameters never appear here (they go through core's leaf layers, the hook point).
 */
import { geluNew, softmaxCrossEntropy, tf } from '@zeroflow/core';

/** Activations by their Hugging Face names (`activation_function` / `hidden_act`). */
export type ActivationName = 'gelu_new' | 'gelu_pytorch_tanh' | 'gelu' | 'relu' | 'silu' | 'swish';

/** Applies a named activation elementwise. `gelu_new` is GPT-2's tanh approximation, `gelu` the exact erf form. */
export function activation(name: ActivationName, x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    switch (name) {
      case 'gelu_new':
      case 'gelu_pytorch_tanh':
        // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) as one fused kernel each way (core's fused-ops)
        return geluNew(x);
      case 'gelu':
        return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
      case 'relu':
        return tf.relu(x);
      case 'silu':
      case 'swish':
        return tf.mul(x, tf.sigmoid(x));
    }
  });
}

/** Masked scores get this added: exp() of it underflows to exactly 0 in fp32, like torch's finfo.min fill. */
const MASKED = -1e9;
const maskCache = new Map<number, Float32Array>();

/** Additive causal mask [T, T] (0 on and below the diagonal, -1e9 above); the JS table is cached per length. */
export function causalMask(t: number): tf.Tensor2D {
  let table = maskCache.get(t);
  if (!table) {
    table = new Float32Array(t * t);
    for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) table[i * t + j] = MASKED;
    if (maskCache.size > 16) maskCache.clear(); // generate() walks through many lengths
    maskCache.set(t, table);
  }
  return tf.tensor2d(table.slice(), [t, t]);
}

/**
 * Causal scaled dot-product attention over q, k, v of shape [B, H, T, D] (same H: repeat kv heads first),
 * returning [B, H, T, D]. Batched matmuls run on [B*H, T, D] so their batch dims are equal: tfjs's BatchMatMul
 * gradient is wrong when batch dims broadcast (DESIGN.md section 4). `dropProbs` is attention dropout.
 */
export function causalAttention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  dropProbs: (probs: tf.Tensor) => tf.Tensor = (p) => p,
): tf.Tensor {
  return tf.tidy(() => {
    const [b, h, t, d] = q.shape as number[];
    const q3 = tf.reshape(q, [b * h, t, d]);
    const k3 = tf.reshape(k, [b * h, t, d]);
    const v3 = tf.reshape(v, [b * h, t, d]);
    const scores = tf.add(tf.mul(tf.matMul(q3, k3, false, true), 1 / Math.sqrt(d)), causalMask(t));
    const probs = dropProbs(tf.softmax(scores));
    return tf.reshape(tf.matMul(probs, v3), [b, h, t, d]);
  });
}

/** [B, Hkv, T, D] -> [B, Hkv * nRep, T, D], each kv head repeated nRep times in a row (HF `repeat_kv`). */
export function repeatKV(x: tf.Tensor, nRep: number): tf.Tensor {
  if (nRep === 1) return x;
  return tf.tidy(() => {
    const [b, hkv, t, d] = x.shape as number[];
    // Rank 4, not 5: tfjs implements tile's gradient only up to rank 4.
    return tf.reshape(tf.tile(tf.reshape(x, [b, hkv, 1, t * d]), [1, 1, nRep, 1]), [b, hkv * nRep, t, d]);
  });
}

/** Hugging Face `rope_scaling` variants supported by `ropeTables`. */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

/** cos/sin tables [maxPositions, headDim] of rotary embeddings, in HF's layout (frequencies repeated twice). */
export interface RopeTables {
  headDim: number;
  maxPositions: number;
  cos: Float32Array;
  sin: Float32Array;
}

/** Inverse frequencies theta^(-2i/d), adjusted as HF does for linear and llama3 `rope_scaling`. */
function inverseFrequencies(headDim: number, theta: number, scaling: RopeScaling | null): Float64Array {
  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / theta ** ((2 * i) / headDim);
  if (scaling?.type === 'linear') for (let i = 0; i < half; i++) inv[i] /= scaling.factor;
  if (scaling?.type === 'llama3') {
    const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: oldLen } = scaling;
    const lowWavelen = oldLen / lowFreqFactor;
    const highWavelen = oldLen / highFreqFactor;
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > lowWavelen) inv[i] /= factor;
      else if (wavelen >= highWavelen) {
        const smooth = (oldLen / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
        inv[i] = (1 - smooth) * (inv[i] / factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

/** Precomputes RoPE tables for positions [0, maxPositions). */
export function ropeTables(
  maxPositions: number,
  headDim: number,
  theta: number,
  scaling: RopeScaling | null = null,
): RopeTables {
  if (headDim % 2 !== 0) throw new RangeError(`RoPE needs an even head dim, got ${headDim}`);
  const half = headDim / 2;
  const inv = inverseFrequencies(headDim, theta, scaling);
  const cos = new Float32Array(maxPositions * headDim);
  const sin = new Float32Array(maxPositions * headDim);
  for (let p = 0; p < maxPositions; p++) {
    for (let i = 0; i < half; i++) {
      // HF computes the angle in fp32; round it the same way so long positions agree.
      const angle = Math.fround(Math.fround(inv[i]) * p);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      cos[p * headDim + i] = c;
      cos[p * headDim + half + i] = c;
      sin[p * headDim + i] = s;
      sin[p * headDim + half + i] = s;
    }
  }
  return { headDim, maxPositions, cos, sin };
}

/**
 * Rotates x [B, H, T, D] by positions 0..T-1: x cos + rotate_half(x) sin, where rotate_half(x) = [-x2, x1]
 * for the halves x1 = x[..., :D/2], x2 = x[..., D/2:] (Hugging Face's pairing, not interleaved pairs).
 */
export function applyRope(x: tf.Tensor, tables: RopeTables): tf.Tensor {
  return tf.tidy(() => {
    const t = (x.shape as number[])[2];
    const d = tables.headDim;
    const cos = tf.tensor2d(tables.cos.slice(0, t * d), [t, d]);
    const sin = tf.tensor2d(tables.sin.slice(0, t * d), [t, d]);
    const [x1, x2] = tf.split(x, 2, 3);
    const rotated = tf.concat([tf.neg(x2), x1], 3);
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
  });
}

/**
 * Mean cross-entropy of logits [..., V] against int32 targets [...]: logSumExp(logits) - logits[target] per
 * position, ignoring targets < 0 (HF's -100), the mean over the remaining positions; a target >= V throws.
 * One fused kernel each way (core's `softmaxCrossEntropy`): the backward, (softmax - onehot) / count, is
 * one pass over the logits, with no one-hot and no gather gradient.
 */
export function crossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return softmaxCrossEntropy(logits, targets);
}
