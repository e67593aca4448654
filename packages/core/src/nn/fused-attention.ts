/**
 * Fused causal self-attention as one tfjs kernel each way (`ZeroflowCausalAttention` and its gradient), taking
 * the packed q/k/v projection [B, T, 3C] of a GPT block and returning the heads' outputs already merged,
 * [B, T, C]. The unfused composition (split, 4 head transposes, two batched matmuls, scale, mask, softmax, and
 * the same again in backward) moves every [B, H, T, T] score tensor through memory several times and keeps
 * two of them per layer for backward; this op keeps only the per-row logsumexp [B, H, T] and recomputes the
 * probabilities in backward (FlashAttention's trade). The `cpu` kernels here are pure TS; the native backend
 * registers threaded SIMD ones under the same names (native/src/kernels/attention.cc, the same algorithm).
 */
import { tf } from '../tf.js';
import { FUSED_KERNELS } from './fused-ops.js';

interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: tf.KernelBackend;
  attrs?: tf.NamedAttrMap;
}

/** [batch, seq, heads, headDim] of a packed qkv input [B, T, 3C] split into `heads` heads. */
export function attentionShape(qkvShape: readonly number[], heads: number): [number, number, number, number] {
  const [batch, seq, c3] = qkvShape;
  if (qkvShape.length !== 3 || c3 % 3 !== 0 || !Number.isInteger(heads) || heads < 1 || (c3 / 3) % heads !== 0) {
    throw new RangeError(
      `causalSelfAttention: qkv must be [batch, seq, 3 * heads * headDim], got [${qkvShape}] with ${heads} heads`,
    );
  }
  return [batch, seq, heads, c3 / 3 / heads];
}

/** Copies head h's [T, D] block of one of q/k/v (`part` 0/1/2) or of a [B, T, C] tensor (`part` 0, stride C). */
function loadHead(
  src: Float32Array,
  base: number,
  stride: number,
  col: number,
  t: number,
  d: number,
  dst: Float32Array,
) {
  for (let i = 0; i < t; i++) for (let x = 0; x < d; x++) dst[i * d + x] = src[base + i * stride + col + x];
}

/** s[j] = (q_i . k_j) * scale for j <= i. */
function scoreRow(q: Float32Array, i: number, k: Float32Array, d: number, scale: number, s: Float32Array): void {
  for (let j = 0; j <= i; j++) {
    let acc = 0;
    for (let x = 0; x < d; x++) acc += q[i * d + x] * k[j * d + x];
    s[j] = acc * scale;
  }
}

/** The forward pass over plain arrays (the `cpu` kernel's body): writes y [B, T, C] and lse [B, H, T]. */
export function causalAttentionValues(
  qkv: Float32Array,
  y: Float32Array,
  lse: Float32Array,
  [batch, seq, heads, dim]: readonly number[],
): void {
  const c = heads * dim;
  const scale = 1 / Math.sqrt(dim);
  const [q, k, v, s] = [0, 0, 0, 0].map(() => new Float32Array(seq * dim));
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const base = b * seq * 3 * c;
      loadHead(qkv, base, 3 * c, h * dim, seq, dim, q);
      loadHead(qkv, base, 3 * c, c + h * dim, seq, dim, k);
      loadHead(qkv, base, 3 * c, 2 * c + h * dim, seq, dim, v);
      for (let i = 0; i < seq; i++) {
        scoreRow(q, i, k, dim, scale, s);
        let m = s[0];
        for (let j = 1; j <= i; j++) m = Math.max(m, s[j]);
        let sum = 0;
        for (let j = 0; j <= i; j++) {
          s[j] = Math.exp(s[j] - m);
          sum += s[j];
        }
        const out = (b * seq + i) * c + h * dim;
        for (let x = 0; x < dim; x++) {
          let acc = 0;
          for (let j = 0; j <= i; j++) acc += s[j] * v[j * dim + x];
          y[out + x] = acc / sum;
        }
        lse[(b * heads + h) * seq + i] = m + Math.log(sum);
      }
    }
  }
}

/** The backward pass over plain arrays: dqkv [B, T, 3C] from qkv, y, lse and dy. */
export function causalAttentionGradValues(
  qkv: Float32Array,
  y: Float32Array,
  lse: Float32Array,
  dy: Float32Array,
  dqkv: Float32Array,
  [batch, seq, heads, dim]: readonly number[],
): void {
  const c = heads * dim;
  const scale = 1 / Math.sqrt(dim);
  const [q, k, v, dout, o, dk, dv, p] = [0, 0, 0, 0, 0, 0, 0, 0].map(() => new Float32Array(seq * dim));
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const base = b * seq * 3 * c;
      loadHead(qkv, base, 3 * c, h * dim, seq, dim, q);
      loadHead(qkv, base, 3 * c, c + h * dim, seq, dim, k);
      loadHead(qkv, base, 3 * c, 2 * c + h * dim, seq, dim, v);
      loadHead(dy, b * seq * c, c, h * dim, seq, dim, dout);
      loadHead(y, b * seq * c, c, h * dim, seq, dim, o);
      dk.fill(0);
      dv.fill(0);
      for (let i = 0; i < seq; i++) {
        const rowLse = lse[(b * heads + h) * seq + i];
        scoreRow(q, i, k, dim, scale, p);
        let delta = 0; // dO_i . O_i: the softmax gradient's row term
        for (let x = 0; x < dim; x++) delta += dout[i * dim + x] * o[i * dim + x];
        const dq = base + i * 3 * c + h * dim;
        for (let x = 0; x < dim; x++) dqkv[dq + x] = 0;
        for (let j = 0; j <= i; j++) {
          const pj = Math.exp(p[j] - rowLse);
          let dp = 0;
          for (let x = 0; x < dim; x++) dp += dout[i * dim + x] * v[j * dim + x];
          const ds = pj * (dp - delta) * scale;
          for (let x = 0; x < dim; x++) {
            dqkv[dq + x] += ds * k[j * dim + x];
            dk[j * dim + x] += ds * q[i * dim + x];
            dv[j * dim + x] += pj * dout[i * dim + x];
          }
        }
      }
      for (let t = 0; t < seq; t++) {
        const row = base + t * 3 * c;
        for (let x = 0; x < dim; x++) {
          dqkv[row + c + h * dim + x] = dk[t * dim + x];
          dqkv[row + 2 * c + h * dim + x] = dv[t * dim + x];
        }
      }
    }
  }
}

function values(backend: tf.KernelBackend, t: tf.TensorInfo): Float32Array {
  return backend.readSync(t.dataId) as Float32Array;
}

function out(backend: tf.KernelBackend, shape: number[], data: Float32Array): tf.TensorInfo {
  const cpu = backend as unknown as { makeTensorInfo(s: number[], d: 'float32', v: Float32Array): tf.TensorInfo };
  return cpu.makeTensorInfo(shape, 'float32', data);
}

const cpuKernels: tf.KernelConfig[] = [
  {
    kernelName: FUSED_KERNELS.causalAttention,
    backendName: 'cpu',
    kernelFunc: (({ inputs, backend, attrs }: KernelArgs) => {
      const shape = attentionShape(inputs.qkv.shape, attrs?.heads as number);
      const [batch, seq, heads, dim] = shape;
      const y = new Float32Array(batch * seq * heads * dim);
      const lse = new Float32Array(batch * heads * seq);
      causalAttentionValues(values(backend, inputs.qkv), y, lse, shape);
      return [out(backend, [batch, seq, heads * dim], y), out(backend, [batch, heads, seq], lse)];
    }) as unknown as tf.KernelFunc,
  },
  {
    kernelName: FUSED_KERNELS.causalAttentionGrad,
    backendName: 'cpu',
    kernelFunc: (({ inputs, backend, attrs }: KernelArgs) => {
      const { qkv, y, lse, dy } = inputs;
      const dqkv = new Float32Array(tf.util.sizeFromShape(qkv.shape));
      const v = (t: tf.TensorInfo) => values(backend, t);
      causalAttentionGradValues(v(qkv), v(y), v(lse), v(dy), dqkv, attentionShape(qkv.shape, attrs?.heads as number));
      return out(backend, qkv.shape, dqkv);
    }) as unknown as tf.KernelFunc,
  },
];

const gradient: tf.GradConfig = {
  kernelName: FUSED_KERNELS.causalAttention,
  inputsToSave: ['qkv'],
  outputsToSave: [true, true],
  gradFunc: (dys, saved, attrs) => {
    // lse is not used downstream: its dy is zeros tfjs made for it
    const dy = (dys as tf.Tensor[])[0];
    const [qkv, y, lse] = saved;
    return {
      qkv: () =>
        tf
          .engine()
          .runKernel(
            FUSED_KERNELS.causalAttentionGrad,
            { qkv, y, lse, dy } as unknown as tf.NamedTensorMap,
            attrs as tf.NamedAttrMap,
          ) as tf.Tensor,
    };
  },
};

/** Registers the `cpu` kernels and the gradient (idempotent, like registerFusedOps); run when this module loads. */
export function registerFusedAttention(): void {
  for (const k of cpuKernels) if (!tf.getKernel(k.kernelName, k.backendName)) tf.registerKernel(k);
  if (!tf.getGradient(gradient.kernelName)) tf.registerGradient(gradient);
}
registerFusedAttention();

/** Whether the active backend has the fused attention kernel (`cpu` and `zeroflow-cpu` do; webgl, wasm do not). */
export function hasFusedAttention(): boolean {
  return !!tf.getKernel(FUSED_KERNELS.causalAttention, tf.getBackend());
}

/**
 * Causal scaled dot-product self-attention of a packed projection `qkv` [B, T, 3C] (q, k, v side by side, as
 * GPT-2's `c_attn` produces them) over `heads` heads: softmax(q k^T / sqrt(D) + causal mask) v with the heads
 * merged back, [B, T, C]. One kernel each way; differentiable like any tfjs op. No attention dropout: callers
 * with a nonzero attention dropout use the unfused composition.
 */
export function causalSelfAttention(qkv: tf.Tensor3D, heads: number): tf.Tensor3D {
  if (qkv.dtype !== 'float32') throw new TypeError(`causalSelfAttention takes float32, got ${qkv.dtype}`);
  attentionShape(qkv.shape, heads);
  const [y, lse] = tf.engine().runKernel(FUSED_KERNELS.causalAttention, { qkv } as unknown as tf.NamedTensorMap, {
    heads,
  }) as tf.Tensor[];
  lse.dispose(); // the tape keeps its own copy for backward
  return y as tf.Tensor3D;
}
