// Fused causal self-attention for @zeroflow/backend-native's `ZeroflowCausalAttention` op
// (packages/core/src/nn/fused-attention.ts): softmax(q k^T / sqrt(D) + causal mask) v for every (batch, head),
// reading q, k and v straight out of the packed projection [B, T, 3C] (C = H D: q at columns [0, C), k at
// [C, 2C), v at [2C, 3C), head h at [h D, (h + 1) D) of each) and writing [B, T, C]. No [B, H, T, T] score
// tensor is ever materialised (only one row of T scores per thread) and no head transpose is needed either
// way; the backward pass recomputes the probabilities from the saved per-row logsumexp (FlashAttention's
// trade: a second q k^T instead of keeping B H T^2 floats per layer for backward).
#pragma once

#include <cstdint>

namespace zf {

// y [B, T, C] and lse [B, H, T] (each row's log-sum-exp of its scaled, masked scores) from qkv [B, T, 3C].
void causal_attention_f32(const float* qkv, float* y, float* lse, int64_t batch, int64_t seq, int64_t heads,
                          int64_t head_dim);

// dqkv [B, T, 3C] from qkv, the forward's y and lse, and dy [B, T, C].
void causal_attention_grad_f32(const float* qkv, const float* y, const float* lse, const float* dy, float* dqkv,
                               int64_t batch, int64_t seq, int64_t heads, int64_t head_dim);

}  // namespace zf
