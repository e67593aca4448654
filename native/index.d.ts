/** Outcome of a native operation: [status, peer global rank or -1, message]. */
export type NativeResult = [status: number, peer: number, message: string];

/** A shared-memory group communicator (see native/src/shm_comm.h). */
export interface ShmCommNative {
  /** Members that have mapped the segment so far. */
  attached(): number;
  /** Blocks until all members mapped the segment, then unlinks its name. */
  waitAttachedAndUnlink(timeoutMs: number): NativeResult;
  unlink(): void;
  /** Queues an operation on a native thread; returns its id. */
  submit(
    kind: number,
    dtype: number,
    op: number,
    rootOrPeer: number,
    tag: number,
    a: ArrayBufferView | null,
    b: ArrayBufferView | null,
    count: number,
    timeoutMs: number,
  ): number;
  /** Blocks until operation `id` is done and returns its result (once per id). */
  wait(id: number): NativeResult;
  /** Keeps the event loop alive while operations are pending (the completion callback must arrive). */
  ref(): void;
  unref(): void;
  /** Stops the threads and unmaps the segment. */
  destroy(): void;
  mappedBytes(): number;
}

export interface ShmAddon {
  ShmComm: new (
    name: string,
    rank: number,
    globalRanks: number[],
    slotBytes: number,
    p2pBytes: number,
    onDone: (id: number) => void,
  ) => ShmCommNative;
  /** shm_open + mmap as an external (zero-copy) ArrayBuffer; unmapped when garbage-collected. */
  mapSegment(name: string, bytes: number, create: boolean): ArrayBuffer;
  unlinkSegment(name: string): boolean;
  /** dst = srcs[0] op srcs[1] op ... with the native kernels (dtype/op codes as in ShmComm). */
  reduce(dtype: number, op: number, dst: ArrayBufferView, srcs: ArrayBufferView[], divisor: number): void;
  /** The SIMD instruction set the reduction kernels use: avx512, avx2 or generic. */
  isa(): string;
}

/** The zeroflow_shm addon, or null when it is unavailable (see shmAddonUnavailableReason). */
export function loadShmAddon(): ShmAddon | null;
/** Why loadShmAddon() returned null; null when it loaded. */
export function shmAddonUnavailableReason(): string | null;

/** Information about the zeroflow_kernels addon. */
export interface KernelsInfo {
  /** "openblas" when the addon links OpenBLAS (used for large matrices), else "none". */
  blas: string;
  /** The instruction set of ZeroFlow's own GEMM kernel: avx512, avx2 or generic. */
  isa: string;
  /** Threads of the kernels' pool (ZEROFLOW_NUM_THREADS, or the cores this process may use). */
  threads: number;
  /** The instruction set of the pointwise kernels (binary, exp, softmax, optimizers): avx512, avx2 or generic. */
  pointwiseIsa: string;
  /** The instruction set of the fp32 <-> fp16/bf16 conversions: avx512, avx2+f16c or generic. */
  halfIsa: string;
  /** Whether the opt-in bf16 matmul can run here (Intel AMX: CPU, OS and kernel permission). */
  amxBf16: boolean;
}

/** The compute kernels behind `@zeroflow/backend-native`. All calls are synchronous. */
export interface KernelsAddon {
  /**
   * Row-major batched matrix multiply: for i in [0, batch), C[i] (+)= op(A[ai]) . op(B[bi]), with op(A) of
   * shape [m, k] (stored [k, m] when transA) and op(B) of shape [k, n] (stored [n, k] when transB); C[i] is
   * [m, n]. Without index arrays, ai = i (or 0 when `a` holds exactly one matrix, a broadcast); aIndex/bIndex
   * give the input matrix for every output batch (general batch broadcasting). `accumulate` adds to C.
   * Views over SharedArrayBuffers are accepted.
   */
  sgemmBatched(
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    batch: number,
    m: number,
    n: number,
    k: number,
    transA: boolean,
    transB: boolean,
    accumulate?: boolean,
    aIndex?: Int32Array | null,
    bIndex?: Int32Array | null,
  ): void;
  /** sgemmBatched on ZeroFlow's own kernel only (never BLAS), for tests and comparisons. */
  sgemmBatchedOwn: KernelsAddon['sgemmBatched'];
  /**
   * sgemmBatched with both inputs rounded to bf16 (nearest even) and fp32 accumulation on Intel AMX; returns
   * false, leaving C untouched, when AMX is unavailable (then use sgemmBatched). Subnormal bf16 inputs count
   * as zero (AMX). Results do not depend on the thread count.
   */
  sgemmBatchedBf16(...args: Parameters<KernelsAddon['sgemmBatched']>): boolean;
  info(): KernelsInfo;
  /**
   * out[i] = a[i] op b[(i / bInner) % bMid] for i < out.length (b op a when `swap`); op: 0 add, 1 sub,
   * 2 mul, 3 div. Same shape: bMid = n; scalar: bMid = 1; [B,T,C] op [C]: bMid = C, bInner = 1;
   * [B,T,C] op [B,T,1]: bMid = B*T, bInner = C. Bit-identical to the float32 result of the JS op.
   */
  binary(
    op: 0 | 1 | 2 | 3,
    a: Float32Array,
    b: Float32Array,
    out: Float32Array,
    bMid: number,
    bInner: number,
    swap: boolean,
  ): void;
  /** out[i] = exp(x[i]) for i < out.length, within 2 ulp of the correctly rounded value. */
  exp(x: Float32Array, out: Float32Array): void;
  /** Softmax over rows of `cols` contiguous values (out.length / cols rows): exp(x - max) / sum. */
  softmax(x: Float32Array, out: Float32Array, cols: number): void;
  /** Dense transpose: out axis i is input axis perm[i]; 4-byte elements (Float32Array or Int32Array). */
  transpose<T extends Float32Array | Int32Array>(x: T, out: T, shape: number[], perm: number[]): void;
  /**
   * One Adam/AdamW step in place over flat buffers, bit-identical to core's TS loop (packages/core/src/optim/adam.ts)
   * for any thread count: bc1 = 1 - beta1^step and bc2 = 1 - beta2^step (1 without bias correction),
   * computed by the caller as `1 - beta ** step` so that they match JS exactly. adamWMode: decoupled decay.
   */
  adamStep(
    params: Float32Array,
    grads: Float32Array,
    expAvg: Float32Array,
    expAvgSq: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    bc1: number,
    bc2: number,
    adamWMode: boolean,
    /** The gradient is fround(grads[i] * gradScale): clipping deferred to the update (default 1). */
    gradScale?: number,
  ): void;
  /**
   * One SGD step in place (torch.optim.SGD semantics), bit-identical to core's TS loop (optim/sgd.ts);
   * momentumBuffer may be null when momentum is 0; firstStep initializes it to the gradient.
   */
  sgdStep(
    params: Float32Array,
    grads: Float32Array,
    momentumBuffer: Float32Array | null,
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
    firstStep: boolean,
  ): void;
  /**
   * Gradient accumulation: dst[i] += src[i] for i < dst.length; with `fresh` (dst holds zeros, not read)
   * dst[i] = src[i] + 0, bit-identical to adding into zeros (-0 becomes +0).
   */
  addInto(dst: Float32Array, src: Float32Array, fresh: boolean): void;
  /**
   * Sum of squares (in double) of x, scaled in place first (x[i] = fround(x[i] * scale)) unless scale is 1,
   * in the fixed block/lane order of core's TS loop (packages/core/src/optim/flat-loops.ts), bit-identical.
   */
  scaleSumSquares(x: Float32Array, scale: number): number;
  /** x[i] = fround(x[i] * scale) in place (gradient clipping), as JS's `x[i] *= scale`. */
  scale(x: Float32Array, scale: number): void;
  /**
   * out[i] = f(x[i]) for i < out.length, computed as tfjs's cpu kernel does (in double where it uses Math.*).
   * op: 0 neg, 1 square, 2 sqrt, 3 rsqrt, 4 tanh, 5 pow(x, param), 6 abs, 7 reciprocal, 8 log, 9 sigmoid, 10 relu.
   */
  unary(op: number, param: number, x: Float32Array, out: Float32Array): void;
  /**
   * Reduces x viewed as [outer, r, inner] over the middle axis into out ([outer, inner]); op: 0 sum, 1 max,
   * 2 min, 3 mean. Sums add in double (mean divides each value by r first, as tfjs); max/min propagate NaN.
   * Results do not depend on the thread count.
   */
  reduce(op: 0 | 1 | 2 | 3, x: Float32Array, out: Float32Array, outer: number, r: number, inner: number): void;
  /** GPT-2's tanh GELU of x into out (out.length elements): x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3). */
  geluNew(x: Float32Array, out: Float32Array): void;
  /** Its gradient: dx = dy * gelu'(x) (dx.length elements). */
  geluNewGrad(x: Float32Array, dy: Float32Array, dx: Float32Array): void;
  /**
   * LayerNorm of x [rows, cols] over cols (rows = y.length / cols), statistics in double (two passes); writes
   * y, and the per-row mean and rstd = 1 / sqrt(var + eps). gamma/beta null: 1 and 0.
   */
  layerNorm(
    x: Float32Array,
    gamma: Float32Array | null,
    beta: Float32Array | null,
    y: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    cols: number,
    eps: number,
  ): void;
  /** LayerNorm's gradient from the saved mean and rstd: dx, and the column sums dgamma, dbeta (null: skipped). */
  layerNormGrad(
    x: Float32Array,
    dy: Float32Array,
    mean: Float32Array,
    rstd: Float32Array,
    gamma: Float32Array | null,
    dx: Float32Array,
    dgamma: Float32Array | null,
    dbeta: Float32Array | null,
    cols: number,
  ): void;
  /**
   * Softmax cross-entropy of logits [rows, cols] (rows = lse.length) against int32 targets (< cols; < 0:
   * ignored): writes each row's logsumexp and returns the mean of lse - logits[target] over kept rows.
   */
  softmaxCrossEntropy(logits: Float32Array, targets: Int32Array, lse: Float32Array, cols: number): number;
  /** Its gradient: dx = (exp(logits - lse) - onehot) * dy / count on kept rows, 0 on ignored rows. */
  softmaxCrossEntropyGrad(
    logits: Float32Array,
    targets: Int32Array,
    lse: Float32Array,
    dy: number,
    dx: Float32Array,
    cols: number,
  ): void;
  /**
   * Causal self-attention from the packed projection qkv [batch, seq, 3 * heads * headDim] (q, k, v side by side,
   * head h at columns h * headDim of each): y [batch, seq, heads * headDim] and each row's logsumexp lse
   * [batch, heads, seq], scores scaled by 1 / sqrt(headDim). No [seq, seq] score tensor is materialised.
   */
  causalAttention(
    qkv: Float32Array,
    y: Float32Array,
    lse: Float32Array,
    batch: number,
    seq: number,
    heads: number,
    headDim: number,
  ): void;
  /** Its gradient dqkv (same layout as qkv) from qkv, the forward's y and lse, and dy (probabilities recomputed). */
  causalAttentionGrad(
    qkv: Float32Array,
    y: Float32Array,
    lse: Float32Array,
    dy: Float32Array,
    dqkv: Float32Array,
    batch: number,
    seq: number,
    heads: number,
    headDim: number,
  ): void;
  /** Narrows src.length fp32 values to fp16 (or bf16) bits, bit-identical to core's numeric/half.ts `narrow`. */
  narrow16(src: Float32Array, dst: Uint16Array, bf16: boolean): void;
  /** Widens src.length fp16 (or bf16) bit patterns to fp32, bit-identical to core's `widen`. */
  widen16(src: Uint16Array, dst: Float32Array, bf16: boolean): void;
  /** Rounds every value of `a` in place through fp16 (or bf16), bit-identical to core's `roundInPlace`. */
  round16(a: Float32Array, bf16: boolean): void;
  /** Resizes the kernels' thread pool (0: the default); returns the new size. */
  setNumThreads(threads: number): number;
}

/** The zeroflow_kernels addon, or null when it is unavailable (see kernelsAddonUnavailableReason). */
export function loadKernelsAddon(): KernelsAddon | null;
/** Why loadKernelsAddon() returned null; null when it loaded. */
export function kernelsAddonUnavailableReason(): string | null;
