import { tf } from '@zeroflow/core';
import { type KernelsAddon, kernelsAddonUnavailableReason, loadKernelsAddon } from '@zeroflow/native';
import { NativeCpuBackend } from './backend.js';
import { installNativeHalfKernels } from './half-kernels.js';
import { makeBatchMatMul, makeFusedMatMul } from './kernels/batch-matmul.js';
import { makeConcat } from './kernels/concat.js';
import { makeBinary, makeExp, makeSoftmax, makeTranspose } from './kernels/elementwise.js';
import { makeFusedKernels } from './kernels/fused.js';
import { makeGatherV2 } from './kernels/gather.js';
import { makePow, makeReduce, makeUnary, UNARY_OPS } from './kernels/math.js';
import { makeSlice, makeSplitV } from './kernels/slice.js';
import { installNativeFlatKernels } from './optim-kernels.js';

/** The name of the native backend in tfjs's registry. */
export const NATIVE_BACKEND_NAME = 'zeroflow-cpu';
/** Above the cpu backend's priority (1), so tfjs picks this backend when no backend was set explicitly. */
export const NATIVE_BACKEND_PRIORITY = 3;

/** What registration did: whether `zeroflow-cpu` is registered and active, and why not when it is not. */
export interface NativeBackendStatus {
  registered: boolean;
  active: boolean;
  /** Why native kernels are unavailable (null when registered). */
  reason: string | null;
  /** The kernels addon's build: BLAS used for large matrices, our kernel's ISA, threads. */
  info: {
    blas: string;
    isa: string;
    threads: number;
    pointwiseIsa: string;
    halfIsa?: string;
    amxBf16?: boolean;
  } | null;
  /** The kernels this backend runs natively (the others are the cpu backend's). */
  nativeKernels: string[];
  /** Whether core's Adam/AdamW/SGD run the native optimizer kernels (needs core's `setFlatKernels` hook). */
  nativeOptimizers: boolean;
  /** Whether core's fp16/bf16 `narrow`/`widen`/`roundInPlace` run native conversions (`setHalfKernels`). */
  nativeHalf: boolean;
}

// Kept on globalThis: the package can be loaded twice in one process (its source in tests and benchmarks,
// its dist through core's plugin loader), and the second copy must not register the backend again.
const STATUS_KEY = Symbol.for('zeroflow.backend-native.status');
const shared = globalThis as unknown as Record<symbol, NativeBackendStatus | undefined>;
let status: NativeBackendStatus | null = shared[STATUS_KEY] ?? null;

/** The kernels overridden with native code (each falls back to the cpu kernel where it cannot run natively). */
function nativeKernelConfigs(addon: KernelsAddon): tf.KernelConfig[] {
  const matmulAndSlice = [
    makeBatchMatMul(addon),
    makeFusedMatMul(addon),
    makeSlice(),
    makeSplitV(),
    ...nativeFusedKernels(addon),
  ];
  // ZEROFLOW_NATIVE_POINTWISE=0 keeps the cpu kernels for the ops below (A/B timings, debugging).
  if (process.env.ZEROFLOW_NATIVE_POINTWISE === '0') return matmulAndSlice;
  return [
    ...matmulAndSlice,
    makeBinary(addon, 'Add'),
    makeBinary(addon, 'Sub'),
    makeBinary(addon, 'Multiply'),
    makeBinary(addon, 'RealDiv'),
    makeExp(addon),
    makeSoftmax(addon),
    makeTranspose(addon),
    ...nativeMathKernels(addon),
  ];
}

/** Unary math, Pow, reductions, gather and concat; ZEROFLOW_NATIVE_MATH=0 keeps their cpu kernels (A/B timings). */
function nativeMathKernels(addon: KernelsAddon): tf.KernelConfig[] {
  if (process.env.ZEROFLOW_NATIVE_MATH === '0') return [];
  return [
    ...(Object.keys(UNARY_OPS) as (keyof typeof UNARY_OPS)[]).map((name) => makeUnary(addon, name)),
    makePow(addon),
    makeReduce(addon, 'Sum'),
    makeReduce(addon, 'Max'),
    makeReduce(addon, 'Min'),
    makeReduce(addon, 'Mean'),
    makeGatherV2(),
    makeConcat(),
  ];
}

/** Core's fused GELU, LayerNorm and cross-entropy; ZEROFLOW_NATIVE_FUSED=0 keeps their TS kernels (A/B timings). */
function nativeFusedKernels(addon: KernelsAddon): tf.KernelConfig[] {
  return process.env.ZEROFLOW_NATIVE_FUSED === '0' ? [] : makeFusedKernels(addon);
}

/**
 * Registers the `zeroflow-cpu` backend (every cpu kernel, the hot ones native) and makes it active. Runs
 * once (later calls return the first result). Without the native kernels addon (not built, or
 * ZEROFLOW_NO_NATIVE=1) it says so once on stderr and leaves the current backend (`cpu`) active.
 */
export function registerNativeBackend(options: { activate?: boolean } = {}): NativeBackendStatus {
  if (status) return status;
  const addon = loadKernelsAddon();
  if (!addon) {
    const reason = kernelsAddonUnavailableReason() ?? 'unknown reason';
    process.stderr.write(
      `[zeroflow/backend-native] native kernels unavailable (${reason}); using the tfjs cpu backend\n`,
    );
    status = {
      registered: false,
      active: false,
      reason,
      info: null,
      nativeKernels: [],
      nativeOptimizers: false,
      nativeHalf: false,
    };
    shared[STATUS_KEY] = status;
    return status;
  }
  tf.registerBackend(NATIVE_BACKEND_NAME, () => new NativeCpuBackend(addon), NATIVE_BACKEND_PRIORITY);
  const native = nativeKernelConfigs(addon);
  const overridden = new Set(native.map((k) => k.kernelName));
  for (const kernel of tf.getKernelsForBackend('cpu')) {
    if (!overridden.has(kernel.kernelName)) tf.registerKernel({ ...kernel, backendName: NATIVE_BACKEND_NAME });
  }
  for (const kernel of native) tf.registerKernel({ ...kernel, backendName: NATIVE_BACKEND_NAME });
  let active = false;
  if (options.activate !== false) {
    // setBackend is async only for backends with an async init; ours initializes synchronously, so the
    // switch has happened when this returns.
    void tf.setBackend(NATIVE_BACKEND_NAME);
    active = tf.getBackend() === NATIVE_BACKEND_NAME;
  }
  status = {
    registered: true,
    active,
    reason: null,
    info: addon.info(),
    nativeKernels: [...overridden],
    nativeOptimizers: installNativeFlatKernels(addon),
    nativeHalf: installNativeHalfKernels(addon),
  };
  shared[STATUS_KEY] = status;
  return status;
}

/** The result of registration so far (null before `registerNativeBackend` ran; importing the package runs it). */
export function nativeBackendStatus(): NativeBackendStatus | null {
  return status;
}

/** Resizes the native kernels' thread pool (0: the default, ZEROFLOW_NUM_THREADS or the cores); returns the size. */
export function setNativeThreads(threads: number): number {
  const addon = loadKernelsAddon();
  return addon ? addon.setNumThreads(threads) : 0;
}

/**
 * The native kernels addon itself (raw sgemm, conversions...), for benchmarks and tools that measure it
 * without tfjs; null when unavailable.
 */
export function nativeKernelsAddon(): KernelsAddon | null {
  return loadKernelsAddon();
}
