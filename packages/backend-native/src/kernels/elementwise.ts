import { tf } from '@zeroflow/core';
import type { KernelsAddon } from '@zeroflow/native';
import { type NativeCpuBackend, outputBuffer, outputLike } from '../backend.js';
import { cpuKernel, float32Values } from './batch-matmul.js';
import { makeFloat32Map } from './math.js';

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: NativeCpuBackend; attrs?: tf.NamedAttrMap };

/**
 * How a broadcast binary op maps onto the addon's `binary(op, full, other, out, mid, inner, swap)`: one input
 * (`full`) has the output's size, the other is read at `(i / inner) % mid`. That covers same shape, scalar,
 * trailing broadcast ([B,T,C] op [C]), [B,T,C] op [B,T,1] and a kept middle block ([O,M,I] op [M,1]); any
 * other pattern (both inputs broadcast, several separate kept blocks) returns null and takes the cpu kernel.
 */
export interface BinaryPlan {
  outShape: number[];
  /** Which input has the output's size; the other is broadcast. */
  full: 'a' | 'b';
  mid: number;
  inner: number;
}

/** The broadcast plan of `a op b`, or null for patterns the native kernel does not take. */
export function planBinary(aShape: number[], bShape: number[]): BinaryPlan | null {
  const outShape = tf.broadcast_util.assertAndGetBroadcastShape(aShape, bShape);
  const size = tf.util.sizeFromShape(outShape);
  const full = tf.util.sizeFromShape(aShape) === size ? 'a' : tf.util.sizeFromShape(bShape) === size ? 'b' : null;
  if (!full) return null;
  const other = full === 'a' ? bShape : aShape;
  const rank = outShape.length;
  const padded = [...new Array<number>(rank - other.length).fill(1), ...other];
  // The dims the other input keeps (not broadcast) must form one block [lo, hi]; size-1 output dims are neutral.
  let lo = -1;
  let hi = -1;
  for (let d = 0; d < rank; d++) {
    if (outShape[d] === 1) continue;
    if (padded[d] === outShape[d]) {
      if (lo < 0) lo = d;
      else if (hi !== d - 1 && !outShape.slice(hi + 1, d).every((s) => s === 1)) return null;
      hi = d;
    }
  }
  if (lo < 0) return { outShape, full, mid: 1, inner: 1 };
  const mid = tf.util.sizeFromShape(outShape.slice(lo, hi + 1));
  const inner = tf.util.sizeFromShape(outShape.slice(hi + 1));
  return { outShape, full, mid, inner };
}

/**
 * The float32 values of `t`; an int32 `t` against a float32 `other` is converted (tfjs upcasts it to float32
 * the same way, e.g. the int32 exponent scalar of `tf.pow(x, 3)` meets float32 tensors in Pow's gradient).
 */
function promotedValues(backend: NativeCpuBackend, t: tf.TensorInfo, other: tf.TensorInfo): Float32Array | null {
  const values = float32Values(backend, t);
  if (values || t.dtype !== 'int32' || other.dtype !== 'float32') return values;
  const ints = backend.data.get(t.dataId)?.values;
  return ints instanceof Int32Array ? Float32Array.from(ints) : null;
}

const BINARY_OPS = { Add: 0, Sub: 1, Multiply: 2, RealDiv: 3 } as const;

/** A native float32 binary kernel (Add, Sub, Multiply, RealDiv) with the cpu kernel as fallback. */
export function makeBinary(addon: KernelsAddon, kernelName: keyof typeof BINARY_OPS): tf.KernelConfig {
  const op = BINARY_OPS[kernelName];
  return {
    kernelName,
    backendName: 'zeroflow-cpu',
    kernelFunc: ((args: KernelArgs) => {
      const { a, b } = args.inputs;
      const aValues = promotedValues(args.backend, a, b);
      const bValues = promotedValues(args.backend, b, a);
      const plan = aValues && bValues ? planBinary(a.shape, b.shape) : null;
      if (!plan || !aValues || !bValues) return cpuKernel(kernelName, args);
      const out = outputBuffer(args.backend, tf.util.sizeFromShape(plan.outShape));
      if (out.length > 0) {
        const swap = plan.full === 'b';
        addon.binary(op, swap ? bValues : aValues, swap ? aValues : bValues, out, plan.mid, plan.inner, swap);
      }
      return args.backend.makeTensorInfo(plan.outShape, 'float32', out);
    }) as unknown as tf.KernelFunc,
  };
}

/** Native Exp for float32 inputs (other dtypes: the cpu kernel). */
export function makeExp(addon: KernelsAddon): tf.KernelConfig {
  return makeFloat32Map(tf.Exp, (x, out) => addon.exp(x, out));
}

/** Native Softmax over the last axis (the only axis tfjs supports) for float32 logits. */
export function makeSoftmax(addon: KernelsAddon): tf.KernelConfig {
  return {
    kernelName: tf.Softmax,
    backendName: 'zeroflow-cpu',
    kernelFunc: ((args: KernelArgs) => {
      const { logits } = args.inputs;
      const dim = (args.attrs as { dim?: number } | undefined)?.dim ?? -1;
      const rank = logits.shape.length;
      const values = float32Values(args.backend, logits);
      const cols = rank > 0 ? logits.shape[rank - 1] : 1;
      if (!values || rank === 0 || (dim !== -1 && dim !== rank - 1) || cols === 0) {
        return cpuKernel(tf.Softmax, args);
      }
      const out = outputBuffer(args.backend, values.length);
      addon.softmax(values, out, cols);
      return args.backend.makeTensorInfo(logits.shape, 'float32', out);
    }) as unknown as tf.KernelFunc,
  };
}

/** Native Transpose of any rank and permutation for float32 and int32 tensors (other dtypes: the cpu kernel). */
export function makeTranspose(addon: KernelsAddon): tf.KernelConfig {
  return {
    kernelName: tf.Transpose,
    backendName: 'zeroflow-cpu',
    kernelFunc: ((args: KernelArgs) => {
      const { x } = args.inputs;
      const perm = (args.attrs as { perm: number[] }).perm;
      const values = args.backend.data.get(x.dataId)?.values;
      const ok =
        (x.dtype === 'float32' && values instanceof Float32Array) ||
        (x.dtype === 'int32' && values instanceof Int32Array);
      if (!ok || x.shape.length === 0 || perm.length !== x.shape.length) return cpuKernel(tf.Transpose, args);
      const outShape = perm.map((p) => x.shape[p]);
      const input = values as Float32Array | Int32Array;
      const out = outputLike(args.backend, input, input.length);
      addon.transpose(input, out, x.shape, perm);
      return args.backend.makeTensorInfo(outShape, x.dtype, out);
    }) as unknown as tf.KernelFunc,
  };
}
