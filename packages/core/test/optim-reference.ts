/**
 * Straightforward scalar reference optimizers for the tests, written from the torch.optim docs (Adam, AdamW,
 * SGD) and DeepSpeed's FusedLamb kernel description. Doubles throughout, rounded to fp32 (Math.fround) only
 * where the real optimizer stores a value, so the comparison isolates the algorithm.
 */

/** Deterministic pseudo-random numbers in [-1, 1) (mulberry32). */
export function makeRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

export function randomArray(n: number, random: () => number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = random() * scale;
  return a;
}

export interface RefAdamOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  decoupled: boolean;
  biasCorrection: boolean;
}

/** torch.optim.Adam (decoupled=false) / AdamW (decoupled=true), one step t (1-based) over every element. */
export function refAdamStep(
  o: RefAdamOptions,
  t: number,
  theta: number[],
  grad: ArrayLike<number>,
  m: number[],
  v: number[],
): void {
  for (let i = 0; i < theta.length; i++) {
    let g = grad[i];
    let p = theta[i];
    if (o.decoupled) p = p - o.lr * o.weightDecay * p;
    else g = g + o.weightDecay * p;
    m[i] = Math.fround(o.beta1 * m[i] + (1 - o.beta1) * g);
    v[i] = Math.fround(o.beta2 * v[i] + (1 - o.beta2) * g * g);
    const mHat = o.biasCorrection ? m[i] / (1 - o.beta1 ** t) : m[i];
    const vHat = o.biasCorrection ? v[i] / (1 - o.beta2 ** t) : v[i];
    theta[i] = Math.fround(p - (o.lr * mHat) / (Math.sqrt(vHat) + o.eps));
  }
}

export interface RefSgdOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/** torch.optim.SGD, one step; `buf` is null before the first step with momentum. */
export function refSgdStep(
  o: RefSgdOptions,
  theta: number[],
  grad: ArrayLike<number>,
  buf: number[] | null,
): number[] | null {
  let next = buf;
  if (o.momentum !== 0 && next === null) next = new Array(theta.length).fill(0);
  for (let i = 0; i < theta.length; i++) {
    let g = grad[i] + o.weightDecay * theta[i];
    if (o.momentum !== 0 && next) {
      next[i] = Math.fround(buf === null ? g : o.momentum * next[i] + (1 - o.dampening) * g);
      g = o.nesterov ? g + o.momentum * next[i] : next[i];
    }
    theta[i] = Math.fround(theta[i] - o.lr * g);
  }
  return next;
}

export interface RefLambOptions {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  maxCoeff: number;
  minCoeff: number;
}

/**
 * DeepSpeed FusedLamb on one tensor: moments, update u = m/(sqrt(v)+eps) + wd*p, trust ratio ||p||/||u||
 * clamped to [minCoeff, maxCoeff] (1 if a norm is 0), step lr*sqrt(1-b2^t)/(1-b1^t). Returns the ratio used.
 */
export function refLambTensorStep(
  o: RefLambOptions,
  t: number,
  theta: number[],
  grad: ArrayLike<number>,
  m: number[],
  v: number[],
): number {
  const updates: number[] = [];
  let pNormSq = 0;
  let uNormSq = 0;
  for (let i = 0; i < theta.length; i++) {
    m[i] = Math.fround(o.beta1 * m[i] + (1 - o.beta1) * grad[i]);
    v[i] = Math.fround(o.beta2 * v[i] + (1 - o.beta2) * grad[i] * grad[i]);
    const u = m[i] / (Math.sqrt(v[i]) + o.eps) + o.weightDecay * theta[i];
    updates.push(u);
    pNormSq += theta[i] * theta[i];
    uNormSq += u * u;
  }
  const pNorm = Math.sqrt(pNormSq);
  const uNorm = Math.sqrt(uNormSq);
  let ratio = 1;
  if (pNorm > 0 && uNorm > 0) ratio = Math.min(o.maxCoeff, Math.max(o.minCoeff, pNorm / uNorm));
  const stepSize = (o.lr * Math.sqrt(1 - o.beta2 ** t)) / (1 - o.beta1 ** t);
  for (let i = 0; i < theta.length; i++) theta[i] = Math.fround(theta[i] - stepSize * ratio * updates[i]);
  return ratio;
}

/** Asserts every element of `actual` is within a relative tolerance of `expected`. */
export function maxRelativeError(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const err = Math.abs(actual[i] - expected[i]) / Math.max(1e-6, Math.abs(expected[i]));
    if (err > worst || Number.isNaN(err)) worst = Number.isNaN(err) ? Number.POSITIVE_INFINITY : err;
  }
  return worst;
}
