/**
 * The unfused tfjs compositions the fused ops replaced (GELU tanh, LayerNorm, cross-entropy through
 * logSumExp and a one-hot), kept as test references for packages/core and packages/backend-native.
 */
import { tf } from '../src/index.js';

export function geluNewUnfused(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  });
}

export function layerNormUnfused(x: tf.Tensor, g: tf.Tensor, b: tf.Tensor | null, eps: number): tf.Tensor {
  return tf.tidy(() => {
    const axis = x.rank - 1;
    const mean = tf.mean(x, axis, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), axis, true);
    const scaled = tf.mul(tf.mul(centered, tf.rsqrt(tf.add(variance, eps))), g);
    return b ? tf.add(scaled, b) : scaled;
  });
}

/** Mean over targets >= 0 of logSumExp - logit[target], differentiable through a one-hot mask. */
export function crossEntropyUnfused(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const v = logits.shape[logits.rank - 1];
    const flat = tf.reshape(logits, [-1, v]);
    const t = tf.reshape(targets, [-1]).toInt();
    const keep = tf.cast(tf.greaterEqual(t, 0), 'float32');
    const onehot = tf.oneHot(tf.maximum(t, 0).toInt(), v).toFloat();
    const picked = tf.sum(tf.mul(flat, onehot), 1);
    const perRow = tf.mul(tf.sub(tf.logSumExp(flat, 1), picked), keep);
    return tf.div(tf.sum(perRow), tf.maximum(tf.sum(keep), 1)) as tf.Scalar;
  });
}

/** Causal self-attention of a packed qkv [B, T, 3C] as the unfused ops GPT ran before the fused kernel. */
export function attentionUnfused(qkv: tf.Tensor, heads: number): tf.Tensor {
  return tf.tidy(() => {
    const [b, t, c3] = qkv.shape;
    const c = c3 / 3;
    const d = c / heads;
    const [q, k, v] = tf
      .split(qkv, 3, 2)
      .map((part) => tf.reshape(tf.transpose(tf.reshape(part, [b, t, heads, d]), [0, 2, 1, 3]), [b * heads, t, d]));
    const mask = tf.mul(tf.sub(1, tf.linalg.bandPart(tf.ones([t, t]), -1, 0)), -1e9);
    const probs = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d)), mask));
    const y = tf.reshape(tf.matMul(probs, v), [b, heads, t, d]);
    return tf.reshape(tf.transpose(y, [0, 2, 1, 3]), [b, t, c]);
  });
}

let seed = 11;
/** Deterministic uniform values in [-scale, scale). */
export function uniform(shape: number[], scale = 1): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    v[i] = ((seed / 2 ** 32) * 2 - 1) * scale;
  }
  return tf.tensor(v, shape);
}

/** max |a - b| / max(max |b|, tiny): relative to the tensor's scale. */
export function relErr(a: tf.Tensor, b: tf.Tensor): number {
  const av = a.dataSync();
  const bv = b.dataSync();
  if (av.length !== bv.length) throw new RangeError(`size ${av.length} vs ${bv.length}`);
  let diff = 0;
  let scale = 1e-30;
  for (let i = 0; i < av.length; i++) {
    const d = Math.abs(av[i] - bv[i]);
    diff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(bv[i]));
  }
  return diff / scale;
}

/**
 * Values and gradients (w.r.t. every input, through a random projection of the output) of `fused` against
 * `ref`; returns the worst relative error over them.
 */
export function compareWithGrads(
  fused: (...xs: tf.Tensor[]) => tf.Tensor,
  ref: (...xs: tf.Tensor[]) => tf.Tensor,
  inputs: tf.Tensor[],
): number {
  return tf.tidy(() => {
    const y = fused(...inputs);
    const w = uniform(y.shape);
    const loss =
      (f: (...xs: tf.Tensor[]) => tf.Tensor) =>
      (...xs: tf.Tensor[]) =>
        tf.sum(tf.mul(f(...xs), w));
    const gf = tf.grads(loss(fused))(inputs);
    const gr = tf.grads(loss(ref))(inputs);
    let worst = relErr(y, ref(...inputs));
    gf.forEach((g, i) => {
      worst = Math.max(worst, relErr(g, gr[i]));
    });
    return worst;
  });
}
