import { tf } from '@zeroflow/core';
import { type NativeCpuBackend, outputBuffer } from '../backend.js';
import { cpuKernel } from './batch-matmul.js';

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: NativeCpuBackend; attrs?: tf.NamedAttrMap };
type NumericArray = Float32Array | Int32Array | Uint8Array;

/**
 * A strided slice that copies whole innermost runs with TypedArray.set. tfjs's cpu kernel copies a
 * non-contiguous slice element by element through TensorBuffer.get/set (index arithmetic per element),
 * which made SplitV (the q/k/v split of attention) the top kernel of a GPT step once matmul was native.
 * Returns null for what it does not take (strings, complex); contiguous slices keep the cpu kernel's
 * zero-copy subarray.
 */
function sliceValues(
  backend: NativeCpuBackend,
  x: tf.TensorInfo,
  begin: number[],
  size: number[],
): NumericArray | null {
  if (x.dtype === 'string' || x.dtype === 'complex64') return null;
  const values = backend.data.get(x.dataId)?.values;
  if (!(values instanceof Float32Array || values instanceof Int32Array || values instanceof Uint8Array)) return null;
  const total = tf.util.sizeFromShape(size);
  if (total === 0 || tf.slice_util.isSliceContinous(x.shape, begin, size)) return null;
  const rank = x.shape.length;
  const strides = tf.util.computeStrides(x.shape);
  const out =
    values instanceof Float32Array
      ? outputBuffer(backend, total)
      : new (values.constructor as new (n: number) => NumericArray)(total);
  const run = size[rank - 1];
  const coord = new Array<number>(Math.max(rank - 1, 0)).fill(0);
  for (let o = 0; o < total; o += run) {
    let from = begin[rank - 1];
    for (let d = 0; d < rank - 1; d++) from += (begin[d] + coord[d]) * strides[d];
    out.set(values.subarray(from, from + run) as never, o);
    for (let d = rank - 2; d >= 0; d--) {
      if (++coord[d] < size[d]) break;
      coord[d] = 0;
    }
  }
  return out;
}

function slice(backend: NativeCpuBackend, x: tf.TensorInfo, begin: number[], size: number[]): tf.TensorInfo | null {
  const out = sliceValues(backend, x, begin, size);
  return out ? backend.makeTensorInfo(size, x.dtype, out) : null;
}

/** The Slice kernel with strided copies by runs (the cpu kernel for contiguous slices and other dtypes). */
export function makeSlice(): tf.KernelConfig {
  return {
    kernelName: tf.Slice,
    backendName: 'zeroflow-cpu',
    kernelFunc: ((args: KernelArgs) => {
      const { x } = args.inputs;
      const { begin, size } = (args.attrs ?? {}) as { begin: number | number[]; size?: number | number[] };
      const [b, s] = tf.slice_util.parseSliceParams(x as tf.TensorInfo as tf.Tensor, begin, size);
      tf.slice_util.assertParamsValid(x as tf.TensorInfo as tf.Tensor, b, s);
      return slice(args.backend, x, b, s) ?? cpuKernel(tf.Slice, args);
    }) as unknown as tf.KernelFunc,
  };
}

/** SplitV through the fast slice (the cpu SplitV calls its own slice directly, so it needs its own override). */
export function makeSplitV(): tf.KernelConfig {
  return {
    kernelName: tf.SplitV,
    backendName: 'zeroflow-cpu',
    kernelFunc: ((args: KernelArgs) => {
      const { x } = args.inputs;
      const { numOrSizeSplits, axis } = (args.attrs ?? {}) as { numOrSizeSplits: number | number[]; axis: number };
      const $axis = tf.util.parseAxisParam(axis, x.shape)[0];
      const splitSizes = tf.backend_util.prepareSplitSize(x as tf.TensorInfo as tf.Tensor, numOrSizeSplits, $axis);
      const begin = new Array<number>(x.shape.length).fill(0);
      const size = x.shape.slice();
      const outs: tf.TensorInfo[] = [];
      for (const s of splitSizes) {
        size[$axis] = s;
        const piece =
          slice(args.backend, x, begin.slice(), size.slice()) ??
          cpuKernel(tf.Slice, {
            inputs: { x },
            backend: args.backend,
            attrs: { begin: begin.slice(), size: size.slice() },
          });
        outs.push(piece);
        begin[$axis] += s;
      }
      return outs;
    }) as unknown as tf.KernelFunc,
  };
}
