// Dispatch and threading of the pointwise kernels (pointwise.h). The loops live in pointwise_impl.inc,
// compiled three times (portable, AVX2, AVX-512) and picked once at load time. Work is cut into chunks at
// fixed element (or row) boundaries that do not depend on the pool size, so results never depend on the
// thread count; small inputs run on the calling thread (waking the pool costs more than they take).
#include "pointwise.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "isa_level.h"
#include "thread_pool.h"

namespace zf {

namespace generic {
#include "pointwise_impl.inc"
}  // namespace generic

#if defined(__x86_64__) || defined(__i386__)
#define ZF_POINTWISE_X86 1
namespace avx2 {
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#include "pointwise_impl.inc"
#pragma GCC pop_options
}  // namespace avx2

namespace avx512 {
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx2,fma")
#include "pointwise_impl.inc"
#pragma GCC pop_options
}  // namespace avx512
#endif

namespace {

struct Impl {
  void (*exp_range)(const float*, float*, int64_t, int64_t);
  void (*binary_range)(int, bool, const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t);
  void (*softmax_rows)(const float*, float*, int64_t, int64_t, int64_t);
  void (*adam_range)(const AdamArgs&, int64_t, int64_t);
  void (*sgd_range)(const SgdArgs&, int64_t, int64_t);
  void (*add_into_range)(float*, const float*, int64_t, int64_t, bool);
  double (*scale_sum_squares_block)(float*, int64_t, int64_t, double);
  void (*scale_range)(float*, int64_t, int64_t, double);
  const char* isa;
};

#define ZF_IMPL(ns, name) \
  Impl {                                                                                                  \
    ns::exp_range, ns::binary_range, ns::softmax_rows, ns::adam_range, ns::sgd_range, ns::add_into_range, \
        ns::scale_sum_squares_block, ns::scale_range, name                                                \
  }

Impl pick() {
#ifdef ZF_POINTWISE_X86
  switch (pointwise_isa_level(false)) {
    case IsaLevel::avx512:
      return ZF_IMPL(avx512, "avx512");
    case IsaLevel::avx2:
      return ZF_IMPL(avx2, "avx2");
    case IsaLevel::generic:
      break;
  }
#endif
  return ZF_IMPL(generic, "generic");
}

const Impl& impl() {
  static const Impl chosen = pick();
  return chosen;
}

// Elements per chunk: big enough that a pool task outweighs its wake-up, a multiple of 16 floats (64 bytes)
// so chunks never share a cache line of output.
constexpr int64_t kChunk = 32768;
}  // namespace

void binary_f32(BinaryOp op, const float* a, const float* b, float* out, int64_t n, int64_t b_mid, int64_t b_inner,
                bool swap) {
  if (b_mid < 1) b_mid = 1;
  if (b_inner < 1) b_inner = 1;
  // One value of b (a scalar): one run over the whole range instead of runs of length b_mid = 1.
  if (b_mid == 1) b_inner = std::max<int64_t>(n, 1);
  const auto fn = impl().binary_range;
  for_chunks(n, kChunk, [&](int64_t begin, int64_t end) {
    fn(static_cast<int>(op), swap, a, b, out, begin, end, b_mid, b_inner);
  });
}

void exp_f32(const float* x, float* out, int64_t n) {
  const auto fn = impl().exp_range;
  for_chunks(n, kChunk / 2, [&](int64_t begin, int64_t end) { fn(x, out, begin, end); });
}

void softmax_f32(const float* x, float* out, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
  const auto fn = impl().softmax_rows;
  const int64_t rows_per_chunk = std::max<int64_t>(1, (kChunk / 2) / cols);
  for_chunks(rows, rows_per_chunk, [&](int64_t begin, int64_t end) { fn(x, out, begin, end, cols); });
}

void adam_step(const AdamArgs& args) {
  const auto fn = impl().adam_range;
  for_chunks(args.n, kChunk, [&](int64_t begin, int64_t end) { fn(args, begin, end); });
}

void sgd_step(const SgdArgs& args) {
  const auto fn = impl().sgd_range;
  for_chunks(args.n, kChunk, [&](int64_t begin, int64_t end) { fn(args, begin, end); });
}

void add_into_f32(float* dst, const float* src, int64_t n, bool fresh) {
  const auto fn = impl().add_into_range;
  for_chunks(n, kChunk, [&](int64_t begin, int64_t end) { fn(dst, src, begin, end, fresh); });
}

double scale_sum_squares_f32(float* x, int64_t n, double scale) {
  if (n <= 0) return 0;
  const auto fn = impl().scale_sum_squares_block;
  // One partial per block, added in block order afterwards: the sum does not depend on the pool size.
  const int64_t blocks = (n + kSumSquaresBlock - 1) / kSumSquaresBlock;
  std::vector<double> partial(static_cast<size_t>(blocks));
  for_chunks(n, kSumSquaresBlock, [&](int64_t begin, int64_t end) {
    partial[static_cast<size_t>(begin / kSumSquaresBlock)] = fn(x, begin, end, scale);
  });
  double s = 0;
  for (const double p : partial) s += p;
  return s;
}

void scale_f32(float* x, int64_t n, double scale) {
  const auto fn = impl().scale_range;
  for_chunks(n, kChunk, [&](int64_t begin, int64_t end) { fn(x, begin, end, scale); });
}

const char* pointwise_isa() { return impl().isa; }

}  // namespace zf
