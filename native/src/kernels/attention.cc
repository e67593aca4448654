// Dispatch and threading of the fused causal attention (attention.h). One task per (batch, head) on the pool;
// inside it, blocks of kRows queries: scores S = Q K^T against only the keys the block can see (causal), the
// row softmax (attention_impl.inc, compiled for AVX-512, AVX2 and portable C++ and picked once at load time;
// ZEROFLOW_POINTWISE_ISA caps it), then P V, each matmul on the task's own thread with our GEMM kernel
// reading q, k, v in place out of the packed [B, T, 3C] input (leading dimension 3C). Backward recomputes P
// per block and accumulates dK and dV over blocks. Each task writes only its own head's columns, so no result
// depends on the thread count; scratch is 2 x kRows x T floats per thread.
#include "attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "gemm.h"
#include "isa_level.h"
#include "thread_pool.h"

namespace zf {

namespace generic {
#include "attention_impl.inc"
}  // namespace generic

#if defined(__x86_64__) || defined(__i386__)
#define ZF_ATTN_X86 1
namespace avx2 {
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include "attention_impl.inc"
#pragma GCC pop_options
}  // namespace avx2

namespace avx512 {
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")
#include "attention_impl.inc"
#pragma GCC pop_options
}  // namespace avx512
#endif

namespace {

struct Impl {
  void (*softmax)(float*, int64_t, int64_t, int64_t, int64_t, float, float*);
  void (*probs)(float*, int64_t, int64_t, int64_t, int64_t, float, const float*);
  void (*dscores)(float*, const float*, int64_t, int64_t, int64_t, const float*, const float*, int64_t, int64_t,
                  float);
};

#define ZF_ATTN_IMPL(ns) \
  Impl { ns::softmax_rows, ns::probs_rows, ns::dscores_rows }

Impl pick() {
#ifdef ZF_ATTN_X86
  switch (pointwise_isa_level(true)) {
    case IsaLevel::avx512:
      return ZF_ATTN_IMPL(avx512);
    case IsaLevel::avx2:
      return ZF_ATTN_IMPL(avx2);
    case IsaLevel::generic:
      break;
  }
#endif
  return ZF_ATTN_IMPL(generic);
}

const Impl& impl() {
  static const Impl chosen = pick();
  return chosen;
}

constexpr int64_t kRows = 64;  // queries per block: the block's scores [kRows, T] stay in L2

// Per-thread scratch of 2 score blocks, grown on demand and kept (the pool's threads live for the process).
float* scratch(int64_t seq) {
  thread_local std::vector<float> buf;
  const size_t need = static_cast<size_t>(2 * kRows * seq);
  if (buf.size() < need) buf.resize(need);
  return buf.data();
}

// Where one (batch, head) pair lives: q, k, v columns of the packed input (stride 3C) and of [B, T, C] tensors.
struct Head {
  int64_t seq, dim, c;
  int64_t qkv_base, qkv_ld, q, k, v;  // offsets into qkv / dqkv
  int64_t out_base;                   // offset of this head's columns in y / dy ([B, T, C])
  int64_t lse_base;                   // offset into lse ([B, H, T])
};

Head head_of(int64_t task, int64_t seq, int64_t heads, int64_t dim) {
  const int64_t b = task / heads, h = task % heads, c = heads * dim;
  return Head{seq, dim, c, b * seq * 3 * c, 3 * c, h * dim, c + h * dim, 2 * c + h * dim, b * seq * c + h * dim,
              task * seq};
}

void forward_head(const Impl& fn, const float* qkv, float* y, float* lse, const Head& hd) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd.dim));
  float* s = scratch(hd.seq);
  const float* base = qkv + hd.qkv_base;
  for (int64_t r0 = 0; r0 < hd.seq; r0 += kRows) {
    const int64_t rows = std::min(kRows, hd.seq - r0), keys = r0 + rows;
    // S [rows, keys] = Q[r0 .. r0 + rows] K[0 .. keys]^T
    sgemm_on_thread(rows, keys, hd.dim, base + r0 * hd.qkv_ld + hd.q, hd.qkv_ld, false, base + hd.k, hd.qkv_ld, true,
                    s, keys, false);
    fn.softmax(s, keys, r0, rows, keys, scale, lse + hd.lse_base + r0);
    // Y[r0 .. r0 + rows] = P V[0 .. keys], straight into the merged-heads output
    sgemm_on_thread(rows, hd.dim, keys, s, keys, false, base + hd.v, hd.qkv_ld, false, y + hd.out_base + r0 * hd.c,
                    hd.c, false);
  }
}

void backward_head(const Impl& fn, const float* qkv, const float* y, const float* lse, const float* dy, float* dqkv,
                   const Head& hd) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd.dim));
  float* p = scratch(hd.seq);
  float* dp = p + kRows * hd.seq;
  const float* base = qkv + hd.qkv_base;
  float* dbase = dqkv + hd.qkv_base;
  for (int64_t r0 = 0; r0 < hd.seq; r0 += kRows) {
    const int64_t rows = std::min(kRows, hd.seq - r0), keys = r0 + rows;
    const float* dout = dy + hd.out_base + r0 * hd.c;
    sgemm_on_thread(rows, keys, hd.dim, base + r0 * hd.qkv_ld + hd.q, hd.qkv_ld, false, base + hd.k, hd.qkv_ld, true,
                    p, keys, false);
    fn.probs(p, keys, r0, rows, keys, scale, lse + hd.lse_base + r0);
    // dV[0 .. keys] += P^T dO: keys 0 .. r0 already hold earlier blocks' sums (accumulate), keys r0 .. keys
    // are seen for the first time (write), so no zero-fill pass over dqkv is needed
    sgemm_on_thread(r0, hd.dim, rows, p, keys, true, dout, hd.c, false, dbase + hd.v, hd.qkv_ld, true);
    sgemm_on_thread(rows, hd.dim, rows, p + r0, keys, true, dout, hd.c, false, dbase + r0 * hd.qkv_ld + hd.v,
                    hd.qkv_ld, false);
    // dP [rows, keys] = dO V[0 .. keys]^T, then dS in place
    sgemm_on_thread(rows, keys, hd.dim, dout, hd.c, false, base + hd.v, hd.qkv_ld, true, dp, keys, false);
    fn.dscores(dp, p, keys, rows, keys, dout, y + hd.out_base + r0 * hd.c, hd.c, hd.dim, scale);
    // dQ[r0 .. r0 + rows] = dS K[0 .. keys]
    sgemm_on_thread(rows, hd.dim, keys, dp, keys, false, base + hd.k, hd.qkv_ld, false,
                    dbase + r0 * hd.qkv_ld + hd.q, hd.qkv_ld, false);
    // dK[0 .. keys] += dS^T Q[r0 .. r0 + rows], split like dV
    const float* q = base + r0 * hd.qkv_ld + hd.q;
    sgemm_on_thread(r0, hd.dim, rows, dp, keys, true, q, hd.qkv_ld, false, dbase + hd.k, hd.qkv_ld, true);
    sgemm_on_thread(rows, hd.dim, rows, dp + r0, keys, true, q, hd.qkv_ld, false, dbase + r0 * hd.qkv_ld + hd.k,
                    hd.qkv_ld, false);
  }
}

}  // namespace

void causal_attention_f32(const float* qkv, float* y, float* lse, int64_t batch, int64_t seq, int64_t heads,
                          int64_t head_dim) {
  if (batch <= 0 || seq <= 0 || heads <= 0 || head_dim <= 0) return;
  const Impl& fn = impl();
  global_pool().run(batch * heads,
                    [&](int64_t task) { forward_head(fn, qkv, y, lse, head_of(task, seq, heads, head_dim)); });
}

void causal_attention_grad_f32(const float* qkv, const float* y, const float* lse, const float* dy, float* dqkv,
                               int64_t batch, int64_t seq, int64_t heads, int64_t head_dim) {
  if (batch <= 0 || seq <= 0 || heads <= 0 || head_dim <= 0) return;
  const Impl& fn = impl();
  global_pool().run(batch * heads, [&](int64_t task) {
    backward_head(fn, qkv, y, lse, dy, dqkv, head_of(task, seq, heads, head_dim));
  });
}

}  // namespace zf
