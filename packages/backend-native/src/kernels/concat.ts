import { tf } from '@zeroflow/core';
import { type NativeCpuBackend, outputLike } from '../backend.js';
import { cpuKernel } from './batch-matmul.js';

type ConcatArgs = { inputs: tf.TensorInfo[]; backend: NativeCpuBackend; attrs?: tf.NamedAttrMap };
type Dense = Float32Array | Int32Array;

/**
 * Concat of float32 or int32 tensors (all one dtype) along any axis by whole runs: each input viewed as
 * [outer, inner_i] and copied row by row with `TypedArray.set` (pure TS: tfjs's cpu kernel copies a
 * non-leading-axis concat element by element, e.g. the q/k/v gradients of attention). Other dtypes, empty
 * inputs and a single input take the cpu kernel.
 */
export function makeConcat(): tf.KernelConfig {
  return {
    kernelName: tf.Concat,
    backendName: 'zeroflow-cpu',
    kernelFunc: ((args: ConcatArgs) => {
      const { inputs, backend } = args;
      const dtype = inputs[0]?.dtype;
      const values = inputs.map((t) => backend.data.get(t.dataId)?.values);
      const dense = values.every(
        (v, i) =>
          inputs[i].dtype === dtype &&
          ((dtype === 'float32' && v instanceof Float32Array) || (dtype === 'int32' && v instanceof Int32Array)) &&
          tf.util.sizeFromShape(inputs[i].shape) > 0,
      );
      if (inputs.length < 2 || !dense) return cpuKernel(tf.Concat, args as never);
      const axis = tf.util.parseAxisParam((args.attrs as { axis: number }).axis, inputs[0].shape)[0];
      tf.backend_util.assertParamsConsistent(
        inputs.map((t) => t.shape),
        axis,
      );
      const outShape = tf.backend_util.computeOutShape(
        inputs.map((t) => t.shape),
        axis,
      );
      const outer = tf.util.sizeFromShape(outShape.slice(0, axis));
      const widths = inputs.map((t) => tf.util.sizeFromShape(t.shape.slice(axis)));
      const rowWidth = widths.reduce((a, b) => a + b, 0);
      const first = values[0] as Dense;
      const out = outputLike(backend, first, outer * rowWidth);
      let offset = 0;
      inputs.forEach((_, i) => {
        const src = values[i] as Dense;
        const w = widths[i];
        if (outer === 1) out.set(src, offset);
        else if (w >= 16)
          for (let o = 0; o < outer; o++) out.set(src.subarray(o * w, (o + 1) * w), o * rowWidth + offset);
        else
          for (let o = 0; o < outer; o++) for (let c = 0; c < w; c++) out[o * rowWidth + offset + c] = src[o * w + c];
        offset += w;
      });
      return backend.makeTensorInfo(outShape, dtype, out);
    }) as unknown as tf.KernelFunc,
  };
}
