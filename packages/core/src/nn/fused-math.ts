/**
 * The arithmetic of the fused ops ({@link ./fused-ops.ts}) on plain Float32Arrays: the `cpu` backend's kernels
 * (and so the fallback when no native code runs). Row statistics and reductions are computed in double, so
 * the results are at least as accurate as the unfused tfjs compositions they replace.
 */

const GELU_K = Math.sqrt(2 / Math.PI);
const GELU_C = 0.044715;

/**
 * GPT-2's tanh GELU, 0.5 x (1 + tanh(u)) with u = sqrt(2/pi) (x + 0.044715 x^3), written as x sigmoid(2u):
 * the same function without tanh's cancellation for large negative x.
 */
export function geluNewValues(x: Float32Array, out: Float32Array): void {
  for (let i = 0; i < out.length; i++) {
    const v = x[i];
    out[i] = v / (1 + Math.exp(-2 * GELU_K * (v + GELU_C * v * v * v)));
  }
}

/** dx = dy * gelu'(x) = dy (s + 2 x s (1 - s) u'), s = sigmoid(2u), u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2). */
export function geluNewGradValues(x: Float32Array, dy: Float32Array, dx: Float32Array): void {
  for (let i = 0; i < dx.length; i++) {
    const v = x[i];
    const s = 1 / (1 + Math.exp(-2 * GELU_K * (v + GELU_C * v * v * v)));
    dx[i] = dy[i] * (s + 2 * v * s * (1 - s) * GELU_K * (1 + 3 * GELU_C * v * v));
  }
}

/**
 * LayerNorm of x [rows, cols] over cols with a two-pass mean and variance in double: y = (x - mean) rstd
 * gamma + beta, rstd = 1 / sqrt(var + eps). Writes the per-row mean and rstd (what the gradient needs).
 */
export function layerNormValues(
  x: Float32Array,
  gamma: Float32Array | null,
  beta: Float32Array | null,
  y: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  cols: number,
  eps: number,
): void {
  const rows = y.length / cols;
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += x[base + j];
    const m = sum / cols;
    let sq = 0;
    for (let j = 0; j < cols; j++) {
      const c = x[base + j] - m;
      sq += c * c;
    }
    const s = 1 / Math.sqrt(sq / cols + eps);
    for (let j = 0; j < cols; j++) {
      let v = (x[base + j] - m) * s;
      if (gamma) v *= gamma[j];
      if (beta) v += beta[j];
      y[base + j] = v;
    }
    mean[r] = m;
    rstd[r] = s;
  }
}

/**
 * LayerNorm's gradient from the saved per-row mean and rstd: dx = rstd (g - mean(g) - xhat mean(g xhat)) with
 * g = dy gamma and xhat = (x - mean) rstd; dgamma = sum over rows of dy xhat, dbeta = sum over rows of dy.
 */
export function layerNormGradValues(
  x: Float32Array,
  dy: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  gamma: Float32Array | null,
  dx: Float32Array,
  dgamma: Float32Array,
  dbeta: Float32Array,
  cols: number,
): void {
  const rows = dx.length / cols;
  const pg = new Float64Array(cols);
  const pb = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const m = mean[r];
    const s = rstd[r];
    let sumG = 0;
    let sumGx = 0;
    for (let j = 0; j < cols; j++) {
      const g = gamma ? dy[base + j] * gamma[j] : dy[base + j];
      sumG += g;
      sumGx += g * (x[base + j] - m) * s;
    }
    const a = sumG / cols;
    const b = sumGx / cols;
    for (let j = 0; j < cols; j++) {
      const xhat = (x[base + j] - m) * s;
      const g = gamma ? dy[base + j] * gamma[j] : dy[base + j];
      dx[base + j] = s * (g - a - xhat * b);
      pg[j] += dy[base + j] * xhat;
      pb[j] += dy[base + j];
    }
  }
  dgamma.set(pg);
  dbeta.set(pb);
}

/**
 * Softmax cross-entropy of logits [rows, cols] against integer targets: writes each row's logsumexp (max +
 * log of a double sum) and returns the mean of lse - logits[target] over rows whose target is >= 0 (the
 * others, HF's -100, are ignored; 0 when every row is).
 */
export function softmaxCrossEntropyValues(
  logits: Float32Array,
  targets: ArrayLike<number>,
  lse: Float32Array,
  cols: number,
): number {
  let total = 0;
  let count = 0;
  for (let r = 0; r < lse.length; r++) {
    const base = r * cols;
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < cols; j++) max = Math.max(max, logits[base + j]);
    let sum = 0;
    for (let j = 0; j < cols; j++) sum += Math.exp(logits[base + j] - max);
    const l = max + Math.log(sum);
    lse[r] = l;
    const t = targets[r];
    if (t >= 0) {
      total += l - logits[base + t];
      count++;
    }
  }
  return total / Math.max(count, 1);
}

/** The gradient of {@link softmaxCrossEntropyValues}: (softmax - onehot) * dy / count per kept row, 0 elsewhere. */
export function softmaxCrossEntropyGradValues(
  logits: Float32Array,
  targets: ArrayLike<number>,
  lse: Float32Array,
  dy: number,
  dx: Float32Array,
  cols: number,
): void {
  let count = 0;
  for (let r = 0; r < lse.length; r++) if (targets[r] >= 0) count++;
  const scale = dy / Math.max(count, 1);
  for (let r = 0; r < lse.length; r++) {
    const base = r * cols;
    const t = targets[r];
    if (t < 0) {
      dx.fill(0, base, base + cols);
      continue;
    }
    const l = lse[r];
    for (let j = 0; j < cols; j++) dx[base + j] = (Math.exp(logits[base + j] - l) - (j === t ? 1 : 0)) * scale;
  }
}
