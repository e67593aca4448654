/**
 * The user's own model and data, written with plain TensorFlow.js and nothing from ZeroFlow but the `tf`
 * instance: a two-layer MLP classifier as a function of its weights, and a deterministic synthetic task
 * (points in R^d labelled by a fixed random "teacher" network), so that every rank and every run sees the
 * same data and the loss curve is reproducible.
 */
import { tf } from '@zeroflow/core';

/** Sizes of the MLP and of the task. */
export interface MlpSpec {
  inputs: number;
  hidden: number;
  classes: number;
}

export const DEFAULT_SPEC: MlpSpec = { inputs: 16, hidden: 64, classes: 4 };

/** One sample: features and class index. */
export interface Sample {
  x: Float32Array;
  label: number;
}

/** A collated micro-batch: `x` is [n, inputs], `labels` [n]. */
export interface Batch {
  x: Float32Array;
  labels: Int32Array;
  size: number;
}

/** Mulberry32: a tiny seeded PRNG, so the task needs no dependency and is identical on every rank. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws (Box-Muller). */
function normals(n: number, next: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(next(), 1e-12);
    out[i] = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next()) * scale;
  }
  return out;
}

/** Initial weights, He-scaled, as plain arrays (any tfjs tensors would do as well). */
export function initWeights(spec: MlpSpec, seed: number): Record<string, { shape: number[]; values: Float32Array }> {
  const next = rng(seed);
  return {
    w1: {
      shape: [spec.inputs, spec.hidden],
      values: normals(spec.inputs * spec.hidden, next, Math.sqrt(2 / spec.inputs)),
    },
    b1: { shape: [spec.hidden], values: new Float32Array(spec.hidden) },
    w2: {
      shape: [spec.hidden, spec.classes],
      values: normals(spec.hidden * spec.classes, next, Math.sqrt(2 / spec.hidden)),
    },
    b2: { shape: [spec.classes], values: new Float32Array(spec.classes) },
  };
}

/** The MLP's logits: relu(x W1 + b1) W2 + b2. */
export function logits(ws: Record<string, tf.Tensor>, x: tf.Tensor2D): tf.Tensor2D {
  const h = tf.relu(tf.add(tf.matMul(x, ws.w1 as tf.Tensor2D), ws.b1));
  return tf.add(tf.matMul(h, ws.w2 as tf.Tensor2D), ws.b2) as tf.Tensor2D;
}

/** Mean softmax cross-entropy of the batch: the plain tfjs loss function ZeroFlow will train. */
export function mlpLoss(spec: MlpSpec): (ws: Record<string, tf.Tensor>, b: Batch) => tf.Scalar {
  return (ws, b) =>
    tf.tidy(() => {
      const x = tf.tensor2d(b.x, [b.size, spec.inputs]);
      const onehot = tf.oneHot(tf.tensor1d(b.labels, 'int32'), spec.classes);
      return tf.losses.softmaxCrossEntropy(onehot, logits(ws, x)) as tf.Scalar;
    });
}

/** The seed of the random teacher network that labels every split of the task. */
export const TEACHER_SEED = 17;

/**
 * `n` samples drawn with `sampleSeed` and labelled by a fixed random teacher (a 2-layer tanh network drawn
 * from `TEACHER_SEED`, the same for every split), so the classes are learnable but not linearly separable.
 */
export function syntheticTask(spec: MlpSpec, n: number, sampleSeed: number): Sample[] {
  const teacher = rng(TEACHER_SEED);
  const teacherHidden = 32;
  const t1 = normals(spec.inputs * teacherHidden, teacher, 1 / Math.sqrt(spec.inputs));
  const t2 = normals(teacherHidden * spec.classes, teacher, 1 / Math.sqrt(teacherHidden));
  const next = rng(sampleSeed);
  const out: Sample[] = [];
  const h = new Float64Array(teacherHidden);
  for (let s = 0; s < n; s++) {
    const x = normals(spec.inputs, next);
    for (let j = 0; j < teacherHidden; j++) {
      let a = 0;
      for (let i = 0; i < spec.inputs; i++) a += x[i] * t1[i * teacherHidden + j];
      h[j] = Math.tanh(2 * a);
    }
    let best = 0;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < spec.classes; c++) {
      let score = 0;
      for (let j = 0; j < teacherHidden; j++) score += h[j] * t2[j * spec.classes + c];
      if (score > bestScore) {
        bestScore = score;
        best = c;
      }
    }
    out.push({ x, label: best });
  }
  return out;
}

/** Stacks samples into one micro-batch (the data loader's `collate`). */
export function collate(spec: MlpSpec, items: Sample[]): Batch {
  const x = new Float32Array(items.length * spec.inputs);
  const labels = new Int32Array(items.length);
  items.forEach((s, i) => {
    x.set(s.x, i * spec.inputs);
    labels[i] = s.label;
  });
  return { x, labels, size: items.length };
}
