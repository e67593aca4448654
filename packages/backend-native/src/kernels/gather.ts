import { tf } from '@zeroflow/core';
import { type NativeCpuBackend, outputLike } from '../backend.js';
import { cpuKernel } from './batch-matmul.js';

type KernelArgs = { inputs: Record<string, tf.TensorInfo>; backend: NativeCpuBackend; attrs?: tf.NamedAttrMap };
type Dense = Float32Array | Int32Array;

/**
 * GatherV2 (batchDims 0) for float32 and int32 tensors by whole rows: x viewed as [outer, dim, inner] and
 * out[o, j, :] = x[o, indices[j], :], copied with `TypedArray.set` (pure TS: tfjs's cpu kernel converts
 * every element's flat index to coordinates and back, which made the embedding lookup a top kernel). Any
 * index outside [0, dim) takes the cpu kernel, which throws tfjs's own error.
 */
export function makeGatherV2(): tf.KernelConfig {
  return {
    kernelName: tf.GatherV2,
    backendName: 'zeroflow-cpu',
    kernelFunc: ((args: KernelArgs) => {
      const { x, indices } = args.inputs;
      const { axis, batchDims } = args.attrs as { axis: number; batchDims: number };
      const values = args.backend.data.get(x.dataId)?.values;
      const idx = args.backend.data.get(indices.dataId)?.values;
      const dense =
        (x.dtype === 'float32' && values instanceof Float32Array) ||
        (x.dtype === 'int32' && values instanceof Int32Array);
      if (!dense || batchDims !== 0 || indices.dtype !== 'int32' || !(idx instanceof Int32Array)) {
        return cpuKernel(tf.GatherV2, args);
      }
      const ax = tf.util.parseAxisParam(axis, x.shape)[0];
      const dim = x.shape[ax];
      for (let j = 0; j < idx.length; j++) if (!(idx[j] >= 0 && idx[j] < dim)) return cpuKernel(tf.GatherV2, args);
      const outer = tf.util.sizeFromShape(x.shape.slice(0, ax));
      const inner = tf.util.sizeFromShape(x.shape.slice(ax + 1));
      const src = values as Dense;
      const out = outputLike(args.backend, src, outer * idx.length * inner);
      for (let o = 0; o < outer; o++) {
        const base = o * dim * inner;
        const dst = o * idx.length * inner;
        if (inner === 1) {
          for (let j = 0; j < idx.length; j++) out[dst + j] = src[base + idx[j]];
        } else {
          for (let j = 0; j < idx.length; j++) {
            const from = base + idx[j] * inner;
            out.set(src.subarray(from, from + inner), dst + j * inner);
          }
        }
      }
      const outShape = [...x.shape.slice(0, ax), ...indices.shape, ...x.shape.slice(ax + 1)];
      return args.backend.makeTensorInfo(outShape, x.dtype, out);
    }) as unknown as tf.KernelFunc,
  };
}
