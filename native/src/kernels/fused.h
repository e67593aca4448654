// Fused transformer kernels for @zeroflow/backend-native's fused tfjs ops (packages/core/src/nn/fused-ops.ts):
// GPT-2's tanh GELU, LayerNorm over the last axis and softmax cross-entropy, forward and backward, each one pass over memory instead
// of the 8-10 element-wise tfjs ops (and their saved intermediates) of the unfused compositions. Compiled
// for AVX-512, AVX2 and portable C++ (ZEROFLOW_POINTWISE_ISA caps it); every path does the same IEEE
// operations in the same order (no FMA contraction), and work is split at boundaries that depend only on the
// shape, so results are bit-identical for any ISA and thread count.
#pragma once

#include <cstdint>

namespace zf {

// y = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): the same function as 0.5 x (1 + tanh(u)) without
// tanh's cancellation for large negative x. Float arithmetic, exp within ~1 ulp.
void gelu_new_f32(const float* x, float* out, int64_t n);
// dx = dy (s + 2 x s (1 - s) u'), s = sigmoid(2u), u' = sqrt(2/pi) (1 + 3 * 0.044715 x^2).
void gelu_new_grad_f32(const float* x, const float* dy, float* dx, int64_t n);

// LayerNorm of x [rows, cols] over cols: mean and variance in double (two passes), rstd = 1 / sqrt(var + eps),
// y = (x - mean) rstd gamma + beta (gamma, beta may be null: 1 and 0). Writes the per-row mean and rstd.
void layer_norm_f32(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                    int64_t rows, int64_t cols, double eps);
// Its gradient from the saved mean and rstd: dx = rstd (g - mean(g) - xhat mean(g xhat)) with g = dy gamma,
// dgamma = sum over rows of dy xhat, dbeta = sum over rows of dy (either may be null), all in double.
void layer_norm_grad_f32(const float* x, const float* dy, const float* mean, const float* rstd, const float* gamma,
                         float* dx, float* dgamma, float* dbeta, int64_t rows, int64_t cols);

// Softmax cross-entropy of logits [rows, cols] against int32 targets: writes each row's logsumexp (max + log of
// a double sum of float exps) and returns the mean over rows with target >= 0 of lse - logits[target] (rows
// added in order, in double; 0 when every row is ignored). Targets must be < cols (checked by the caller).
double softmax_xent_f32(const float* logits, const int32_t* targets, float* lse, int64_t rows, int64_t cols);
// Its gradient: dx = (exp(logits - lse) - onehot) * dy / count on kept rows, 0 on ignored rows.
void softmax_xent_grad_f32(const float* logits, const int32_t* targets, const float* lse, double dy, float* dx,
                           int64_t rows, int64_t cols);

}  // namespace zf
