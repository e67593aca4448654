import { tf } from '@zeroflow/core';
import type { KernelsAddon } from '@zeroflow/native';
import { type NativeCpuBackend, outputBuffer } from '../backend.js';
import { matMulPrecision } from '../precision.js';
import { planMatMul } from './matmul-shapes.js';

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: NativeCpuBackend; attrs?: tf.NamedAttrMap };

/** The float32 values of a tensor on the backend, or null when they are not a plain Float32Array. */
export function float32Values(backend: NativeCpuBackend, t: tf.TensorInfo): Float32Array | null {
  if (t.dtype !== 'float32') return null;
  const values = backend.data.get(t.dataId)?.values;
  return values instanceof Float32Array ? values : null;
}

/** Runs the cpu backend's own kernel (the fallback for dtypes and layouts the native kernel does not take). */
export function cpuKernel(name: string, args: KernelArgs): tf.TensorInfo {
  const kernel = tf.getKernel(name, 'cpu');
  if (!kernel) throw new Error(`the cpu backend has no ${name} kernel`);
  return kernel.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
}

/**
 * C = op(A) . op(B) natively, or null when an input is not float32 (then the caller falls back).
 * `bias`, when given and broadcast along the rows (shape [..., n] with every leading dim 1), is written into C
 * first and the product accumulated onto it, which saves a pass over C.
 */
export function nativeMatMul(
  addon: KernelsAddon,
  backend: NativeCpuBackend,
  a: tf.TensorInfo,
  b: tf.TensorInfo,
  transposeA: boolean,
  transposeB: boolean,
  bias?: tf.TensorInfo,
): tf.TensorInfo | null {
  const aValues = float32Values(backend, a);
  const bValues = float32Values(backend, b);
  if (!aValues || !bValues) return null;
  const plan = planMatMul(a.shape, b.shape, transposeA, transposeB);
  // k = 0 writes nothing: start from zeros then
  const out = outputBuffer(backend, plan.batch * plan.m * plan.n, plan.k === 0);
  let accumulate = false;
  if (bias) {
    const biasValues = float32Values(backend, bias);
    if (!biasValues || !isRowBias(bias.shape, plan.n)) return null;
    for (let row = 0; row < plan.batch * plan.m; row++) out.set(biasValues, row * plan.n);
    accumulate = true;
  }
  // bf16 compute when asked for and AMX is there (sgemmBatchedBf16 returns false otherwise: fp32 below)
  const args = [
    aValues,
    bValues,
    out,
    plan.batch,
    plan.m,
    plan.n,
    plan.k,
    transposeA,
    transposeB,
    accumulate,
    plan.aIndex,
    plan.bIndex,
  ] as const;
  if (!(matMulPrecision() === 'bf16' && addon.sgemmBatchedBf16?.(...args))) addon.sgemmBatched(...args);
  return backend.makeTensorInfo(plan.outShape, 'float32', out);
}

/** A bias that adds the same n values to every row: shape [n], [1, n], [1, 1, n] ... (or [1] when n is 1). */
function isRowBias(shape: number[], n: number): boolean {
  if (shape.length === 0) return false;
  return shape[shape.length - 1] === n && shape.slice(0, -1).every((d) => d === 1);
}

/** The BatchMatMul kernel: native for float32, the cpu kernel otherwise. */
export function makeBatchMatMul(addon: KernelsAddon): tf.KernelConfig {
  return {
    kernelName: tf.BatchMatMul,
    backendName: 'zeroflow-cpu',
    kernelFunc: ((args: KernelArgs) => {
      const { a, b } = args.inputs;
      const { transposeA, transposeB } = (args.attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
      return nativeMatMul(addon, args.backend, a, b, !!transposeA, !!transposeB) ?? cpuKernel(tf.BatchMatMul, args);
    }) as unknown as tf.KernelFunc,
  };
}

const ACTIVATION_KERNELS: Record<string, string> = {
  relu: tf.Relu,
  relu6: tf.Relu6,
  elu: tf.Elu,
  sigmoid: tf.Sigmoid,
  leakyrelu: tf.LeakyRelu,
  prelu: tf.Prelu,
};

/**
 * The _FusedMatMul kernel (matMul + bias + activation, what tf.fused.matMul and layers' dense run): the
 * product natively (with a row bias folded into it), then any other bias through the Add kernel and the
 * activation through this backend's activation kernels; non-float32 inputs take the cpu kernel whole.
 */
export function makeFusedMatMul(addon: KernelsAddon): tf.KernelConfig {
  return {
    kernelName: tf._FusedMatMul,
    backendName: 'zeroflow-cpu',
    kernelFunc: ((args: KernelArgs) => {
      const { a, b, bias, preluActivationWeights } = args.inputs;
      const attrs = (args.attrs ?? {}) as {
        transposeA?: boolean;
        transposeB?: boolean;
        activation?: string;
        leakyreluAlpha?: number;
      };
      const backend = args.backend;
      const folded = bias ? nativeMatMul(addon, backend, a, b, !!attrs.transposeA, !!attrs.transposeB, bias) : null;
      let current = folded ?? nativeMatMul(addon, backend, a, b, !!attrs.transposeA, !!attrs.transposeB);
      if (!current) return cpuKernel(tf._FusedMatMul, args);
      if (bias && !folded) current = replace(backend, current, run(tf.Add, { a: current, b: bias }, backend));
      const activation = attrs.activation ?? 'linear';
      if (activation === 'linear') return current;
      const kernelName = ACTIVATION_KERNELS[activation];
      if (!kernelName) throw new Error(`Activation ${activation} has not been implemented for the CPU backend.`);
      const inputs: tf.NamedTensorInfoMap = { x: current };
      if (activation === 'prelu' && preluActivationWeights) inputs.alpha = preluActivationWeights;
      const kernelAttrs: tf.NamedAttrMap = activation === 'leakyrelu' ? { alpha: attrs.leakyreluAlpha ?? 0.2 } : {};
      return replace(backend, current, run(kernelName, inputs, backend, kernelAttrs));
    }) as unknown as tf.KernelFunc,
  };
}

/** Runs this backend's kernel `name` (native where overridden, the copied cpu kernel otherwise). */
function run(name: string, inputs: tf.NamedTensorInfoMap, backend: NativeCpuBackend, attrs: tf.NamedAttrMap = {}) {
  const kernel = tf.getKernel(name, 'zeroflow-cpu') ?? tf.getKernel(name, 'cpu');
  if (!kernel) throw new Error(`no ${name} kernel`);
  return kernel.kernelFunc({ inputs, backend, attrs } as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
}

/** Frees an intermediate result once the next step produced its replacement. */
function replace(backend: NativeCpuBackend, old: tf.TensorInfo, next: tf.TensorInfo): tf.TensorInfo {
  backend.disposeIntermediateTensorInfo(old);
  return next;
}
