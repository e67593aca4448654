import { attentionShape, FUSED_KERNELS, type tf } from '@zeroflow/core';
import type { KernelsAddon } from '@zeroflow/native';
import { type NativeCpuBackend, outputBuffer } from '../backend.js';
import { cpuKernel, float32Values } from './batch-matmul.js';

type KernelArgs = {
  inputs: Record<string, tf.TensorInfo | undefined>;
  backend: NativeCpuBackend;
  attrs?: tf.NamedAttrMap;
};

/** A kernel config for zeroflow-cpu whose body returns null to fall back to core's `cpu` kernel. */
function fused(name: string, body: (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[] | null): tf.KernelConfig {
  return {
    kernelName: name,
    backendName: 'zeroflow-cpu',
    kernelFunc: ((args: KernelArgs) =>
      body(args) ?? cpuKernel(name, args as Parameters<typeof cpuKernel>[1])) as unknown as tf.KernelFunc,
  };
}

/** Float32 values of every input, or null when one is missing, empty or of another dtype. */
function allFloat32(backend: NativeCpuBackend, ...ts: (tf.TensorInfo | undefined)[]): Float32Array[] | null {
  const out: Float32Array[] = [];
  for (const t of ts) {
    const v = t ? float32Values(backend, t) : null;
    if (!v || v.length === 0) return null;
    out.push(v);
  }
  return out;
}

/** Values of an optional float32 input: null when absent, undefined when present but not native-compatible. */
function optionalFloat32(backend: NativeCpuBackend, t: tf.TensorInfo | undefined): Float32Array | null | undefined {
  if (!t) return null;
  return float32Values(backend, t) ?? undefined;
}

/**
 * Native kernels of core's fused ops (packages/core/src/nn/fused-ops.ts, fused-attention.ts): GPT-2's tanh GELU,
 * LayerNorm, softmax cross-entropy and causal self-attention, forward and backward, each one threaded SIMD
 * pass (native/src/kernels/fused.cc, attention.cc). Other dtypes and empty
 * tensors take core's `cpu` kernel.
 */
export function makeFusedKernels(addon: KernelsAddon): tf.KernelConfig[] {
  return [
    fused(FUSED_KERNELS.geluNew, ({ inputs, backend }) => {
      const x = inputs.x as tf.TensorInfo;
      const [xv] = allFloat32(backend, x) ?? [];
      if (!xv) return null;
      const y = outputBuffer(backend, xv.length);
      addon.geluNew(xv, y);
      return backend.makeTensorInfo(x.shape, 'float32', y);
    }),
    fused(FUSED_KERNELS.geluNewGrad, ({ inputs, backend }) => {
      const { x, dy } = inputs;
      const vs = allFloat32(backend, x, dy);
      if (!vs || vs[0].length !== vs[1].length) return null;
      const dx = outputBuffer(backend, vs[0].length);
      addon.geluNewGrad(vs[0], vs[1], dx);
      return backend.makeTensorInfo((x as tf.TensorInfo).shape, 'float32', dx);
    }),
    fused(FUSED_KERNELS.layerNorm, ({ inputs, backend, attrs }) => {
      const x = inputs.x as tf.TensorInfo;
      const [xv] = allFloat32(backend, x) ?? [];
      const gamma = optionalFloat32(backend, inputs.gamma);
      const beta = optionalFloat32(backend, inputs.beta);
      if (!xv || gamma === undefined || beta === undefined) return null;
      const cols = x.shape[x.shape.length - 1];
      const rows = xv.length / cols;
      const [y, mean, rstd] = [
        outputBuffer(backend, xv.length),
        outputBuffer(backend, rows),
        outputBuffer(backend, rows),
      ];
      addon.layerNorm(xv, gamma, beta, y, mean, rstd, cols, attrs?.eps as number);
      const rowShape = x.shape.slice(0, -1);
      return [
        backend.makeTensorInfo(x.shape, 'float32', y),
        backend.makeTensorInfo(rowShape, 'float32', mean),
        backend.makeTensorInfo(rowShape, 'float32', rstd),
      ];
    }),
    fused(FUSED_KERNELS.layerNormGrad, ({ inputs, backend }) => {
      const { x, dy, mean, rstd } = inputs;
      const vs = allFloat32(backend, x, dy, mean, rstd);
      const gamma = optionalFloat32(backend, inputs.gamma);
      if (!vs || gamma === undefined) return null;
      const shape = (x as tf.TensorInfo).shape;
      const cols = shape[shape.length - 1];
      const [dx, dgamma, dbeta] = [
        outputBuffer(backend, vs[0].length),
        outputBuffer(backend, cols),
        outputBuffer(backend, cols),
      ];
      addon.layerNormGrad(vs[0], vs[1], vs[2], vs[3], gamma, dx, dgamma, dbeta, cols);
      return [
        backend.makeTensorInfo(shape, 'float32', dx),
        backend.makeTensorInfo([cols], 'float32', dgamma),
        backend.makeTensorInfo([cols], 'float32', dbeta),
      ];
    }),
    fused(FUSED_KERNELS.softmaxCrossEntropy, ({ inputs, backend }) => {
      const { logits, targets } = inputs as Record<string, tf.TensorInfo>;
      const [xv] = allFloat32(backend, logits) ?? [];
      const ids = int32Values(backend, targets);
      if (!xv || !ids) return null;
      const rowShape = logits.shape.slice(0, -1);
      const lse = outputBuffer(backend, ids.length);
      const loss = addon.softmaxCrossEntropy(xv, ids, lse, logits.shape[logits.shape.length - 1]);
      return [
        backend.makeTensorInfo([], 'float32', Float32Array.of(loss)),
        backend.makeTensorInfo(rowShape, 'float32', lse),
      ];
    }),
    fused(FUSED_KERNELS.softmaxCrossEntropyGrad, ({ inputs, backend }) => {
      const { dy, logits, targets, lse } = inputs as Record<string, tf.TensorInfo>;
      const vs = allFloat32(backend, dy, logits, lse);
      const ids = int32Values(backend, targets);
      if (!vs || !ids) return null;
      const dx = outputBuffer(backend, vs[1].length);
      addon.softmaxCrossEntropyGrad(vs[1], ids, vs[2], vs[0][0], dx, logits.shape[logits.shape.length - 1]);
      return backend.makeTensorInfo(logits.shape, 'float32', dx);
    }),
    fused(FUSED_KERNELS.causalAttention, ({ inputs, backend, attrs }) => {
      const qkv = inputs.qkv as tf.TensorInfo;
      const [batch, seq, heads, dim] = attentionShape(qkv.shape, attrs?.heads as number);
      const [qv] = allFloat32(backend, qkv) ?? [];
      if (!qv) return null;
      const y = outputBuffer(backend, batch * seq * heads * dim);
      const lse = outputBuffer(backend, batch * heads * seq);
      addon.causalAttention(qv, y, lse, batch, seq, heads, dim);
      return [
        backend.makeTensorInfo([batch, seq, heads * dim], 'float32', y),
        backend.makeTensorInfo([batch, heads, seq], 'float32', lse),
      ];
    }),
    fused(FUSED_KERNELS.causalAttentionGrad, ({ inputs, backend, attrs }) => {
      const { qkv, y, lse, dy } = inputs as Record<string, tf.TensorInfo>;
      const [batch, seq, heads, dim] = attentionShape(qkv.shape, attrs?.heads as number);
      const vs = allFloat32(backend, qkv, y, lse, dy);
      if (!vs) return null;
      const dqkv = outputBuffer(backend, vs[0].length);
      addon.causalAttentionGrad(vs[0], vs[1], vs[2], vs[3], dqkv, batch, seq, heads, dim);
      return backend.makeTensorInfo(qkv.shape, 'float32', dqkv);
    }),
  ];
}

function int32Values(backend: NativeCpuBackend, t: tf.TensorInfo): Int32Array | null {
  const values = t.dtype === 'int32' ? backend.data.get(t.dataId)?.values : null;
  return values instanceof Int32Array && values.length > 0 ? values : null;
}
