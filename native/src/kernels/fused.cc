// Dispatch and threading of the fused kernels (fused.h). The loops live in fused_impl.inc, compiled three
// times (portable, AVX2, AVX-512) and picked once at load time. Element-wise kernels cut their input into
// fixed chunks; row kernels into fixed blocks of rows; the LayerNorm gradient's column sums are reduced per
// block into doubles and the blocks added in order, so no result depends on the thread count.
#include "fused.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "isa_level.h"
#include "thread_pool.h"

namespace zf {

namespace generic {
#include "fused_impl.inc"
}  // namespace generic

#if defined(__x86_64__) || defined(__i386__)
#define ZF_FUSED_X86 1
namespace avx2 {
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include "fused_impl.inc"
#pragma GCC pop_options
}  // namespace avx2

namespace avx512 {
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")
#include "fused_impl.inc"
#pragma GCC pop_options
}  // namespace avx512
#endif

namespace {

struct Impl {
  void (*gelu)(const float*, float*, int64_t, int64_t);
  void (*gelu_grad)(const float*, const float*, float*, int64_t, int64_t);
  void (*ln)(const float*, const float*, const float*, float*, float*, float*, int64_t, int64_t, int64_t, double);
  void (*ln_grad)(const float*, const float*, const float*, const float*, const float*, float*, double*, double*,
                  int64_t, int64_t, int64_t);
  void (*xent)(const float*, float*, int64_t, int64_t, int64_t);
  void (*xent_grad)(const float*, const int32_t*, const float*, float, float*, int64_t, int64_t, int64_t);
};

#define ZF_FUSED_IMPL(ns) \
  Impl { ns::gelu_range, ns::gelu_grad_range, ns::layer_norm_rows, ns::layer_norm_grad_rows, ns::xent_rows, ns::xent_grad_rows }

Impl pick() {
#ifdef ZF_FUSED_X86
  switch (pointwise_isa_level(true)) {
    case IsaLevel::avx512:
      return ZF_FUSED_IMPL(avx512);
    case IsaLevel::avx2:
      return ZF_FUSED_IMPL(avx2);
    case IsaLevel::generic:
      break;
  }
#endif
  return ZF_FUSED_IMPL(generic);
}

const Impl& impl() {
  static const Impl chosen = pick();
  return chosen;
}

constexpr int64_t kChunk = 16384;  // elements per task: exp makes GELU ~10x a copy, so smaller than math.cc's
}  // namespace

void gelu_new_f32(const float* x, float* out, int64_t n) {
  const auto fn = impl().gelu;
  for_chunks(n, kChunk, [&](int64_t b, int64_t e) { fn(x, out, b, e); });
}

void gelu_new_grad_f32(const float* x, const float* dy, float* dx, int64_t n) {
  const auto fn = impl().gelu_grad;
  for_chunks(n, kChunk, [&](int64_t b, int64_t e) { fn(x, dy, dx, b, e); });
}

void layer_norm_f32(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                    int64_t rows, int64_t cols, double eps) {
  if (cols <= 0) return;
  const auto fn = impl().ln;
  const int64_t per = std::max<int64_t>(1, kChunk / cols);
  for_chunks(rows, per, [&](int64_t b, int64_t e) { fn(x, gamma, beta, y, mean, rstd, b, e, cols, eps); });
}

void layer_norm_grad_f32(const float* x, const float* dy, const float* mean, const float* rstd, const float* gamma,
                         float* dx, float* dgamma, float* dbeta, int64_t rows, int64_t cols) {
  if (cols <= 0 || rows <= 0) return;
  const auto fn = impl().ln_grad;
  // At most 64 blocks, so the partial sums stay small whatever the row count.
  const int64_t per = std::max(std::max<int64_t>(1, kChunk / cols), (rows + 63) / 64);
  const int64_t blocks = (rows + per - 1) / per;
  std::vector<double> partial(static_cast<size_t>(blocks * cols * 2), 0.0);
  auto task = [&](int64_t blk) {
    double* pg = partial.data() + blk * cols * 2;
    fn(x, dy, mean, rstd, gamma, dx, pg, pg + cols, blk * per, std::min(rows, (blk + 1) * per), cols);
  };
  if (blocks == 1) {
    task(0);
  } else {
    global_pool().run(blocks, task);
  }
  for (int64_t j = 0; j < cols; ++j) {
    double g = 0, b = 0;
    for (int64_t blk = 0; blk < blocks; ++blk) {
      g += partial[blk * cols * 2 + j];
      b += partial[blk * cols * 2 + cols + j];
    }
    if (dgamma) dgamma[j] = static_cast<float>(g);
    if (dbeta) dbeta[j] = static_cast<float>(b);
  }
}

double softmax_xent_f32(const float* logits, const int32_t* targets, float* lse, int64_t rows, int64_t cols) {
  if (cols <= 0 || rows <= 0) return 0.0;
  const auto fn = impl().xent;
  const int64_t per = std::max<int64_t>(1, kChunk / cols);
  for_chunks(rows, per, [&](int64_t b, int64_t e) { fn(logits, lse, b, e, cols); });
  double total = 0;
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (targets[r] < 0) continue;
    total += static_cast<double>(lse[r]) - logits[r * cols + targets[r]];
    ++count;
  }
  return total / static_cast<double>(std::max<int64_t>(count, 1));
}

void softmax_xent_grad_f32(const float* logits, const int32_t* targets, const float* lse, double dy, float* dx,
                           int64_t rows, int64_t cols) {
  if (cols <= 0 || rows <= 0) return;
  int64_t count = 0;
  for (int64_t r = 0; r < rows; ++r) count += targets[r] >= 0;
  const float scale = static_cast<float>(dy / static_cast<double>(std::max<int64_t>(count, 1)));
  const auto fn = impl().xent_grad;
  const int64_t per = std::max<int64_t>(1, kChunk / cols);
  for_chunks(rows, per, [&](int64_t b, int64_t e) { fn(logits, targets, lse, scale, dx, b, e, cols); });
}

}  // namespace zf
