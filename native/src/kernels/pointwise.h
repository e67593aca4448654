// Element-wise, softmax, transpose and optimizer kernels for @zeroflow/backend-native and core's flat
// optimizers. Each runs on the process-wide thread pool for large sizes (chunks split at fixed element
// boundaries, so results never depend on the thread count) with SIMD loops chosen at run time (AVX-512,
// AVX2 or portable C++; every path does the same IEEE operations in the same order, so they agree bit
// for bit).
#pragma once

#include <cstdint>

namespace zf {

enum class BinaryOp : int { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3 };

// out[i] = a[i] op b[(i / b_inner) % b_mid] for i in [0, n) (`swap`: b op a). Covers same shape (b_mid = n),
// scalar (b_mid = 1), trailing broadcast [.., C] op [C] (b_inner = 1) and [B, T, C] op [B, T, 1]
// (b_inner = C), and a broadcast middle block [O, M, I] op [M, 1].
void binary_f32(BinaryOp op, const float* a, const float* b, float* out, int64_t n, int64_t b_mid, int64_t b_inner,
                bool swap);

// out[i] = exp(x[i]) within 2 ulp of the correctly rounded value, across the whole float range.
void exp_f32(const float* x, float* out, int64_t n);

// Softmax over rows of `cols` contiguous values: exp(x - max(row)) / sum(row), the sum in double.
void softmax_f32(const float* x, float* out, int64_t rows, int64_t cols);

// Transposes a dense rank-`rank` tensor of 4-byte elements: out axis i is input axis perm[i].
void transpose_32(const uint32_t* x, uint32_t* out, const int64_t* shape, const int* perm, int rank);

// One Adam/AdamW step over flat buffers, computed in double exactly as core's TS loop (optim/adam.ts), so
// results are bit-identical to it: bc1/bc2 are the bias corrections 1 - beta^step (1 without correction).
struct AdamArgs {
  float* params;
  const float* grads;
  float* exp_avg;
  float* exp_avg_sq;
  int64_t n;
  double lr, beta1, beta2, eps, weight_decay, bc1, bc2;
  bool adam_w_mode;  // decoupled weight decay (AdamW) instead of L2 added to the gradient
  // The gradient is float(grads[i] * grad_scale): clipping deferred to the update (1: grads as they are)
  double grad_scale = 1.0;
};
void adam_step(const AdamArgs& args);

// One SGD step (torch.optim.SGD semantics, as core's optim/sgd.ts, bit-identical): momentum_buffer may be
// null when momentum is 0; `first_step` initializes the buffer to the gradient (no dampening).
struct SgdArgs {
  float* params;
  const float* grads;
  float* momentum_buffer;
  int64_t n;
  double lr, momentum, dampening, weight_decay;
  bool nesterov, first_step;
};
void sgd_step(const SgdArgs& args);

// Gradient accumulation into a flat buffer: dst[i] += src[i]; with `fresh` (dst holds zeros that need not be
// read) dst[i] = src[i] + 0.0f, which is what adding into zeros gives bit for bit (-0 becomes +0).
void add_into_f32(float* dst, const float* src, int64_t n, bool fresh);

// Sum of squares in double of x[i] scaled by `scale` (x[i] = float(x[i] * scale) is stored first unless
// scale == 1), in core's fixed order (optim/flat-loops.ts): blocks of kSumSquaresBlock elements from x[0],
// each summed in kSumSquaresLanes lanes (lane l takes the elements i with i % lanes == l of the block's whole
// lane rows), lanes added in order, then the block's tail, then block partials added in order. The order
// depends on n only, never on the thread count or ISA.
constexpr int64_t kSumSquaresBlock = 32768;
constexpr int kSumSquaresLanes = 8;
double scale_sum_squares_f32(float* x, int64_t n, double scale);

// x[i] = float(double(x[i]) * scale): a JS `x[i] *= scale` (gradient clipping).
void scale_f32(float* x, int64_t n, double scale);

// The instruction set of these kernels: avx512, avx2 or generic (ZEROFLOW_POINTWISE_ISA caps it).
const char* pointwise_isa();

}  // namespace zf
