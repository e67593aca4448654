/**
 * Fused transformer ops as tfjs kernels registered by name: GPT-2's tanh GELU, LayerNorm over the last axis and
 * softmax cross-entropy. Each forward and each backward is one kernel (one pass over memory) instead of the
 * 5-10 element-wise tfjs ops of the unfused compositions, and each saves only what its backward needs (GELU:
 * x; LayerNorm: x, gamma and the per-row mean and rstd; cross-entropy: logits, targets and the per-row
 * logsumexp). The `cpu` kernels here are pure TS (fused-math.ts); `@zeroflow/backend-native` registers native
 * ones under the same names for `zeroflow-cpu`. Gradients are registered with `tf.registerGradient`, so the ops
 * work inside `tf.grads`, `tf.customGrad` and activation checkpointing like any tfjs op.
 */
import { tf } from '../tf.js';
import {
  geluNewGradValues,
  geluNewValues,
  layerNormGradValues,
  layerNormValues,
  softmaxCrossEntropyGradValues,
  softmaxCrossEntropyValues,
} from './fused-math.js';

/** Kernel names of the fused ops (the native backend registers its kernels under the same names). */
export const FUSED_KERNELS = {
  geluNew: 'ZeroflowGeluNew',
  geluNewGrad: 'ZeroflowGeluNewGrad',
  layerNorm: 'ZeroflowLayerNorm',
  layerNormGrad: 'ZeroflowLayerNormGrad',
  softmaxCrossEntropy: 'ZeroflowSoftmaxCrossEntropy',
  softmaxCrossEntropyGrad: 'ZeroflowSoftmaxCrossEntropyGrad',
  causalAttention: 'ZeroflowCausalAttention',
  causalAttentionGrad: 'ZeroflowCausalAttentionGrad',
} as const;

/** The arguments tfjs passes to a kernel function. */
interface KernelArgs {
  inputs: Record<string, tf.TensorInfo | undefined>;
  backend: tf.KernelBackend;
  attrs?: tf.NamedAttrMap;
}

function values(backend: tf.KernelBackend, t: tf.TensorInfo): Float32Array {
  return backend.readSync(t.dataId) as Float32Array;
}

function optionalValues(backend: tf.KernelBackend, t: tf.TensorInfo | undefined): Float32Array | null {
  return t ? values(backend, t) : null;
}

function out(backend: tf.KernelBackend, shape: number[], data: Float32Array): tf.TensorInfo {
  // The cpu backend (and zeroflow-cpu, its subclass) keeps `data` as the tensor's storage without a copy.
  const cpu = backend as unknown as { makeTensorInfo(s: number[], d: 'float32', v: Float32Array): tf.TensorInfo };
  return cpu.makeTensorInfo(shape, 'float32', data);
}

/** The size of the last axis and the shape of the per-row statistics ([...shape without it]). */
function rowsOf(shape: number[]): { cols: number; rowShape: number[] } {
  return { cols: shape[shape.length - 1], rowShape: shape.slice(0, -1) };
}

const cpuKernels: tf.KernelConfig[] = [
  {
    kernelName: FUSED_KERNELS.geluNew,
    backendName: 'cpu',
    kernelFunc: (({ inputs, backend }: KernelArgs) => {
      const x = inputs.x as tf.TensorInfo;
      const y = new Float32Array(tf.util.sizeFromShape(x.shape));
      geluNewValues(values(backend, x), y);
      return out(backend, x.shape, y);
    }) as unknown as tf.KernelFunc,
  },
  {
    kernelName: FUSED_KERNELS.geluNewGrad,
    backendName: 'cpu',
    kernelFunc: (({ inputs, backend }: KernelArgs) => {
      const { x, dy } = inputs as Record<string, tf.TensorInfo>;
      const dx = new Float32Array(tf.util.sizeFromShape(x.shape));
      geluNewGradValues(values(backend, x), values(backend, dy), dx);
      return out(backend, x.shape, dx);
    }) as unknown as tf.KernelFunc,
  },
  {
    kernelName: FUSED_KERNELS.layerNorm,
    backendName: 'cpu',
    kernelFunc: (({ inputs, backend, attrs }: KernelArgs) => {
      const x = inputs.x as tf.TensorInfo;
      const { cols, rowShape } = rowsOf(x.shape);
      const size = tf.util.sizeFromShape(x.shape);
      const [y, mean, rstd] = [new Float32Array(size), new Float32Array(size / cols), new Float32Array(size / cols)];
      const gamma = optionalValues(backend, inputs.gamma);
      const beta = optionalValues(backend, inputs.beta);
      layerNormValues(values(backend, x), gamma, beta, y, mean, rstd, cols, attrs?.eps as number);
      return [out(backend, x.shape, y), out(backend, rowShape, mean), out(backend, rowShape, rstd)];
    }) as unknown as tf.KernelFunc,
  },
  {
    kernelName: FUSED_KERNELS.layerNormGrad,
    backendName: 'cpu',
    kernelFunc: (({ inputs, backend }: KernelArgs) => {
      const { x, dy, mean, rstd } = inputs as Record<string, tf.TensorInfo>;
      const { cols } = rowsOf(x.shape);
      const [dx, dgamma, dbeta] = [
        new Float32Array(tf.util.sizeFromShape(x.shape)),
        new Float32Array(cols),
        new Float32Array(cols),
      ];
      const gamma = optionalValues(backend, inputs.gamma);
      const v = (t: tf.TensorInfo) => values(backend, t);
      layerNormGradValues(v(x), v(dy), v(mean), v(rstd), gamma, dx, dgamma, dbeta, cols);
      return [out(backend, x.shape, dx), out(backend, [cols], dgamma), out(backend, [cols], dbeta)];
    }) as unknown as tf.KernelFunc,
  },
  {
    kernelName: FUSED_KERNELS.softmaxCrossEntropy,
    backendName: 'cpu',
    kernelFunc: (({ inputs, backend }: KernelArgs) => {
      const { logits, targets } = inputs as Record<string, tf.TensorInfo>;
      const { cols, rowShape } = rowsOf(logits.shape);
      const lse = new Float32Array(tf.util.sizeFromShape(rowShape));
      const ids = backend.readSync(targets.dataId) as Int32Array;
      const loss = softmaxCrossEntropyValues(values(backend, logits), ids, lse, cols);
      return [out(backend, [], Float32Array.of(loss)), out(backend, rowShape, lse)];
    }) as unknown as tf.KernelFunc,
  },
  {
    kernelName: FUSED_KERNELS.softmaxCrossEntropyGrad,
    backendName: 'cpu',
    kernelFunc: (({ inputs, backend }: KernelArgs) => {
      const { dy, logits, targets, lse } = inputs as Record<string, tf.TensorInfo>;
      const { cols } = rowsOf(logits.shape);
      const dx = new Float32Array(tf.util.sizeFromShape(logits.shape));
      const ids = backend.readSync(targets.dataId) as Int32Array;
      softmaxCrossEntropyGradValues(
        values(backend, logits),
        ids,
        values(backend, lse),
        values(backend, dy)[0],
        dx,
        cols,
      );
      return out(backend, logits.shape, dx);
    }) as unknown as tf.KernelFunc,
  },
];

function run(name: string, inputs: Record<string, tf.Tensor>, attrs: tf.NamedAttrMap = {}): tf.Tensor | tf.Tensor[] {
  return tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs) as tf.Tensor | tf.Tensor[];
}

const gradients: tf.GradConfig[] = [
  {
    kernelName: FUSED_KERNELS.geluNew,
    inputsToSave: ['x'],
    gradFunc: (dy, saved) => ({
      x: () => run(FUSED_KERNELS.geluNewGrad, { x: saved[0], dy: dy as tf.Tensor }) as tf.Tensor,
    }),
  },
  {
    kernelName: FUSED_KERNELS.layerNorm,
    inputsToSave: ['x', 'gamma'],
    outputsToSave: [false, true, true],
    gradFunc: (dys, saved) => {
      // Only y is used downstream: the dys of mean and rstd are zeros tfjs made for them.
      const dy = (dys as tf.Tensor[])[0];
      const [x, gamma, mean, rstd] = saved;
      const [dx, dgamma, dbeta] = run(FUSED_KERNELS.layerNormGrad, { x, dy, gamma, mean, rstd }) as tf.Tensor[];
      return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
    },
  },
  {
    kernelName: FUSED_KERNELS.softmaxCrossEntropy,
    inputsToSave: ['logits', 'targets'],
    outputsToSave: [false, true],
    gradFunc: (dys, saved) => {
      const [logits, targets, lse] = saved;
      const dy = (dys as tf.Tensor[])[0];
      return {
        logits: () => run(FUSED_KERNELS.softmaxCrossEntropyGrad, { dy, logits, targets, lse }) as tf.Tensor,
        targets: () => tf.zerosLike(targets).toFloat(),
      };
    },
  },
];

/**
 * Registers the `cpu` kernels and the gradients of the fused ops; idempotent (core can be loaded twice in one
 * process, as source and as dist), and run when this module loads. Kernels already registered (by another
 * copy) are left alone.
 */
export function registerFusedOps(): void {
  for (const k of cpuKernels) if (!tf.getKernel(k.kernelName, k.backendName)) tf.registerKernel(k);
  for (const g of gradients) if (!tf.getGradient(g.kernelName)) tf.registerGradient(g);
}
registerFusedOps();

function asFloat(x: tf.Tensor): tf.Tensor {
  if (x.dtype !== 'float32') throw new TypeError(`fused ops take float32 tensors, got ${x.dtype}`);
  return x;
}

/** GPT-2's tanh GELU (HF `gelu_new` / `gelu_pytorch_tanh`) of a float32 tensor, one fused kernel each way. */
export function geluNew<T extends tf.Tensor>(x: T): T {
  return run(FUSED_KERNELS.geluNew, { x: asFloat(x) }) as T;
}

/**
 * LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * gamma (+ beta), biased variance as torch's;
 * gamma and beta have the last axis's size. Statistics in double; backward is one kernel returning dx,
 * dgamma and dbeta.
 */
export function layerNorm<T extends tf.Tensor>(x: T, gamma: tf.Tensor, beta: tf.Tensor | null, eps: number): T {
  const cols = x.shape[x.rank - 1];
  if (x.rank === 0 || gamma.size !== cols || (beta && beta.size !== cols)) {
    throw new RangeError(`layerNorm: gamma/beta must have the last axis's size ${cols}, x is [${x.shape}]`);
  }
  const inputs: Record<string, tf.Tensor> = { x: asFloat(x), gamma: asFloat(gamma) };
  if (beta) inputs.beta = asFloat(beta);
  const [y, mean, rstd] = run(FUSED_KERNELS.layerNorm, inputs, { eps }) as tf.Tensor[];
  // The tape keeps its own copies of mean and rstd for backward.
  mean.dispose();
  rstd.dispose();
  return y as T;
}

/**
 * Mean softmax cross-entropy of logits [..., V] against integer targets [...] (positions whose target is < 0,
 * HF's -100, are ignored; the mean is over the others, 0 if none). A target >= V throws. Backward is one pass:
 * (softmax - onehot) * dy / count.
 */
export function softmaxCrossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  const v = logits.shape[logits.rank - 1];
  if (targets.size * v !== logits.size) {
    throw new RangeError(`crossEntropy: targets [${targets.shape}] do not match logits [${logits.shape}]`);
  }
  const ids = targets.dataSync();
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] >= v) throw new RangeError(`crossEntropy: target ${ids[i]} at position ${i} is >= vocab size ${v}`);
  }
  return tf.tidy(() => {
    const flat = tf.reshape(asFloat(logits), [-1, v]);
    const t = targets.dtype === 'int32' ? tf.reshape(targets, [-1]) : tf.cast(tf.reshape(targets, [-1]), 'int32');
    const [loss] = run(FUSED_KERNELS.softmaxCrossEntropy, { logits: flat, targets: t }) as tf.Tensor[];
    return loss as tf.Scalar;
  });
}
