import { tf } from '@zeroflow/core';
import type { KernelsAddon } from '@zeroflow/native';
import { type NativeCpuBackend, outputBuffer, recycleBuffer } from '../backend.js';
import { cpuKernel, float32Values } from './batch-matmul.js';

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: NativeCpuBackend; attrs?: tf.NamedAttrMap };

/** The addon's unary op codes (native/src/kernels/math.h, `zf::UnaryOp`). */
export const UNARY_OPS = {
  Neg: 0,
  Square: 1,
  Sqrt: 2,
  Rsqrt: 3,
  Tanh: 4,
  Abs: 6,
  Reciprocal: 7,
  Log: 8,
  Sigmoid: 9,
  Relu: 10,
} as const;
const POW = 5;

/** A float32 element-wise kernel `kernelName` computed by `map(x, out)` (other dtypes: the cpu kernel). */
export function makeFloat32Map(kernelName: string, map: (x: Float32Array, out: Float32Array) => void): tf.KernelConfig {
  return {
    kernelName,
    backendName: 'zeroflow-cpu',
    kernelFunc: ((args: KernelArgs) => {
      const { x } = args.inputs;
      const values = float32Values(args.backend, x);
      if (!values) return cpuKernel(kernelName, args);
      const out = outputBuffer(args.backend, values.length);
      map(values, out);
      return args.backend.makeTensorInfo(x.shape, 'float32', out);
    }) as unknown as tf.KernelFunc,
  };
}

/** A native float32 unary kernel (other dtypes: the cpu kernel). */
export function makeUnary(addon: KernelsAddon, kernelName: keyof typeof UNARY_OPS): tf.KernelConfig {
  const op = UNARY_OPS[kernelName];
  return makeFloat32Map(kernelName, (x, out) => addon.unary(op, 0, x, out));
}

/** The value of a one-element float32 or int32 tensor, or null. */
function scalarValue(backend: NativeCpuBackend, t: tf.TensorInfo): number | null {
  if (tf.util.sizeFromShape(t.shape) !== 1 || (t.dtype !== 'float32' && t.dtype !== 'int32')) return null;
  const values = backend.data.get(t.dataId)?.values;
  return values instanceof Float32Array || values instanceof Int32Array ? values[0] : null;
}

/**
 * Native Pow for a float32 base and a one-element exponent (`tf.pow(x, 3)`, and the `pow(a, b - 1)` of Pow's
 * gradient); other layouts take the cpu kernel. The output has the broadcast shape, as tfjs's.
 */
export function makePow(addon: KernelsAddon): tf.KernelConfig {
  return {
    kernelName: tf.Pow,
    backendName: 'zeroflow-cpu',
    kernelFunc: ((args: KernelArgs) => {
      const { a, b } = args.inputs;
      const base = float32Values(args.backend, a);
      const exponent = scalarValue(args.backend, b);
      if (!base || exponent === null) return cpuKernel(tf.Pow, args);
      const outShape = tf.broadcast_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const out = outputBuffer(args.backend, base.length);
      addon.unary(POW, exponent, base, out);
      return args.backend.makeTensorInfo(outShape, 'float32', out);
    }) as unknown as tf.KernelFunc,
  };
}

const REDUCE_OPS = { Sum: 0, Max: 1, Min: 2, Mean: 3 } as const;

/**
 * How a reduction over `axes` maps onto the addon's [outer, r, inner] view: possible without moving data when
 * the reduced axes form one block once size-1 dims are ignored; otherwise `perm` moves them last first.
 */
export interface ReducePlan {
  outer: number;
  r: number;
  inner: number;
  /** A transpose to apply first (reduced axes moved last, in order), or null. */
  perm: number[] | null;
}

/** The plan of a reduction of `shape` over `axes` (already normalized to 0..rank-1). */
export function planReduce(shape: number[], axes: number[]): ReducePlan {
  const reduced = new Set(axes);
  const live = shape.map((_, d) => d).filter((d) => shape[d] !== 1);
  const liveReduced = live.filter((d) => reduced.has(d));
  const r = liveReduced.reduce((p, d) => p * shape[d], 1);
  const size = tf.util.sizeFromShape(shape);
  if (liveReduced.length === 0) return { outer: size, r: 1, inner: 1, perm: null };
  const first = live.indexOf(liveReduced[0]);
  const contiguous = liveReduced.every((d, i) => live[first + i] === d);
  if (contiguous) {
    const inner = live.slice(first + liveReduced.length).reduce((p, d) => p * shape[d], 1);
    return { outer: size / (r * inner), r, inner, perm: null };
  }
  const kept = shape.map((_, d) => d).filter((d) => !reduced.has(d));
  return { outer: size / r, r, inner: 1, perm: [...kept, ...axes.slice().sort((x, y) => x - y)] };
}

/** Native Sum, Max, Min or Mean of a float32 tensor over any axes (other dtypes, empty tensors: the cpu kernel). */
export function makeReduce(addon: KernelsAddon, kernelName: keyof typeof REDUCE_OPS): tf.KernelConfig {
  const op = REDUCE_OPS[kernelName];
  return {
    kernelName,
    backendName: 'zeroflow-cpu',
    kernelFunc: ((args: KernelArgs) => {
      const { x } = args.inputs;
      const attrs = args.attrs as { axis?: number | number[]; reductionIndices?: number | number[]; keepDims: boolean };
      const values = float32Values(args.backend, x);
      if (!values || values.length === 0) return cpuKernel(kernelName, args);
      const axes = tf.util.parseAxisParam(attrs.axis ?? attrs.reductionIndices ?? x.shape.map((_, d) => d), x.shape);
      const [outShape] = tf.backend_util.computeOutAndReduceShapes(x.shape, axes);
      const plan = planReduce(x.shape, axes);
      let input = values;
      if (plan.perm) {
        input = outputBuffer(args.backend, values.length);
        addon.transpose(values, input, x.shape, plan.perm);
      }
      const out = outputBuffer(args.backend, plan.outer * plan.inner);
      addon.reduce(op, input, out, plan.outer, plan.r, plan.inner);
      if (input !== values) recycleBuffer(args.backend, input);
      const shape = attrs.keepDims ? tf.backend_util.expandShapeToKeepDim(outShape, axes) : outShape;
      return args.backend.makeTensorInfo(shape, 'float32', out);
    }) as unknown as tf.KernelFunc,
  };
}
