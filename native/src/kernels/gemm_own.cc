// Our own SGEMM: Goto/BLIS-style blocking (KC x NC panels of B and MC x KC blocks of A packed into
// micro-panels, zero-padded at the edges) around an MR x NR register-tile micro-kernel, dispatched at run
// time to AVX-512, AVX2+FMA or portable C++ (no -march=native, so one binary runs everywhere).
// Every element of C is summed in the same order (k ascending, KC blocks in order) whatever the tiling or
// thread count, so results do not depend on ZEROFLOW_NUM_THREADS.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "gemm.h"
#include "thread_pool.h"

namespace zf {
namespace {

constexpr int64_t KC = 256;
constexpr int64_t NC = 2048;
constexpr int kMaxMR = 8;
constexpr int kMaxNR = 32;

using MicroFn = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool load_c);

struct MicroKernel {
  int mr, nr;
  int64_t mc;  // rows of A packed per block (a multiple of mr)
  MicroFn fn;
  const char* isa;
};

__attribute__((target("avx512f,fma"))) void micro_avx512(int64_t kc, const float* a, const float* b, float* c,
                                                        int64_t ldc, bool load_c) {
  __m512 acc[8][2];
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 8
    for (int r = 0; r < 8; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(ar, b1, acc[r][1]);
    }
    a += 8;
    b += 32;
  }
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r) {
    float* row = c + r * ldc;
    if (load_c) {
      acc[r][0] = _mm512_add_ps(_mm512_loadu_ps(row), acc[r][0]);
      acc[r][1] = _mm512_add_ps(_mm512_loadu_ps(row + 16), acc[r][1]);
    }
    _mm512_storeu_ps(row, acc[r][0]);
    _mm512_storeu_ps(row + 16, acc[r][1]);
  }
}

__attribute__((target("avx2,fma"))) void micro_avx2(int64_t kc, const float* a, const float* b, float* c,
                                                   int64_t ldc, bool load_c) {
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int r = 0; r < 6; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < 6; ++r) {
      const __m256 ar = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(ar, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(ar, b1, acc[r][1]);
    }
    a += 6;
    b += 16;
  }
#pragma GCC unroll 6
  for (int r = 0; r < 6; ++r) {
    float* row = c + r * ldc;
    if (load_c) {
      acc[r][0] = _mm256_add_ps(_mm256_loadu_ps(row), acc[r][0]);
      acc[r][1] = _mm256_add_ps(_mm256_loadu_ps(row + 8), acc[r][1]);
    }
    _mm256_storeu_ps(row, acc[r][0]);
    _mm256_storeu_ps(row + 8, acc[r][1]);
  }
}

void micro_generic(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool load_c) {
  float acc[4][8] = {};
  for (int64_t p = 0; p < kc; ++p) {
    for (int r = 0; r < 4; ++r)
      for (int j = 0; j < 8; ++j) acc[r][j] += a[r] * b[j];
    a += 4;
    b += 8;
  }
  for (int r = 0; r < 4; ++r)
    for (int j = 0; j < 8; ++j) c[r * ldc + j] = load_c ? c[r * ldc + j] + acc[r][j] : acc[r][j];
}

MicroKernel pick_kernel() {
  __builtin_cpu_init();
  const char* cap = std::getenv("ZEROFLOW_GEMM_ISA");  // avx2 | generic: caps the choice (tests, debugging)
  const bool allow512 = !cap || std::strcmp(cap, "avx512") == 0;
  const bool allow2 = allow512 || std::strcmp(cap, "avx2") == 0;
  if (allow512 && __builtin_cpu_supports("avx512f")) return {8, 32, 128, micro_avx512, "avx512"};
  if (allow2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {6, 16, 120, micro_avx2, "avx2"};
  return {4, 8, 128, micro_generic, "generic"};
}

const MicroKernel& kernel() {
  static const MicroKernel k = pick_kernel();
  return k;
}

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

// Per-thread packing buffers, grown on demand and kept: the pool's threads live for the process.
float* scratch(int which, size_t floats) {
  thread_local std::unique_ptr<float, FreeDeleter> bufs[2];
  thread_local size_t sizes[2] = {0, 0};
  if (sizes[which] < floats) {
    const size_t bytes = ((floats * sizeof(float) + 63) / 64) * 64;
    bufs[which].reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (!bufs[which]) std::abort();
    sizes[which] = floats;
  }
  return bufs[which].get();
}

// Packs op(A)[0:mc, 0:kc] into mr-row micro-panels: panel s holds element (s*mr + r, p) at [p*mr + r].
void pack_a(int mr, int64_t mc, int64_t kc, const float* a, int64_t lda, bool trans, float* dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += mr) {
    const int rows = static_cast<int>(std::min<int64_t>(mr, mc - i0));
    for (int64_t p = 0; p < kc; ++p) {
      float* d = dst + p * mr;
      if (trans) {
        const float* s = a + p * lda + i0;
        for (int r = 0; r < rows; ++r) d[r] = s[r];
      } else {
        const float* s = a + i0 * lda + p;
        for (int r = 0; r < rows; ++r) d[r] = s[r * lda];
      }
      for (int r = rows; r < mr; ++r) d[r] = 0.0f;
    }
    dst += mr * kc;
  }
}

// Packs op(B)[0:kc, 0:nc] into nr-column micro-panels: panel s holds element (p, s*nr + j) at [p*nr + j].
void pack_b(int nr, int64_t kc, int64_t nc, const float* b, int64_t ldb, bool trans, float* dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += nr) {
    const int cols = static_cast<int>(std::min<int64_t>(nr, nc - j0));
    for (int64_t p = 0; p < kc; ++p) {
      float* d = dst + p * nr;
      if (trans) {
        const float* s = b + j0 * ldb + p;
        for (int j = 0; j < cols; ++j) d[j] = s[j * ldb];
      } else {
        const float* s = b + p * ldb + j0;
        for (int j = 0; j < cols; ++j) d[j] = s[j];
      }
      for (int j = cols; j < nr; ++j) d[j] = 0.0f;
    }
    dst += nr * kc;
  }
}

// One thread's C[0:m, 0:n] (+)= op(A) op(B); a, b and c already point at the sub-problem's origin.
void gemm_block(const MicroKernel& uk, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool ta,
                const float* b, int64_t ldb, bool tb, float* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < m; ++i) std::memset(c + i * ldc, 0, n * sizeof(float));
    return;
  }
  const int mr = uk.mr, nr = uk.nr;
  float* ap = scratch(0, static_cast<size_t>(uk.mc) * KC);
  float* bp = scratch(1, static_cast<size_t>(KC) * (NC + kMaxNR));
  alignas(64) float tile[kMaxMR * kMaxNR];
  for (int64_t jc = 0; jc < n; jc += NC) {
    const int64_t nc = std::min(NC, n - jc);
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = std::min(KC, k - pc);
      const bool load_c = accumulate || pc > 0;
      pack_b(nr, kc, nc, tb ? b + jc * ldb + pc : b + pc * ldb + jc, ldb, tb, bp);
      for (int64_t ic = 0; ic < m; ic += uk.mc) {
        const int64_t mc = std::min(uk.mc, m - ic);
        pack_a(mr, mc, kc, ta ? a + pc * lda + ic : a + ic * lda + pc, lda, ta, ap);
        for (int64_t jr = 0; jr < nc; jr += nr) {
          const int64_t cols = std::min<int64_t>(nr, nc - jr);
          const float* bpanel = bp + (jr / nr) * nr * kc;
          for (int64_t ir = 0; ir < mc; ir += mr) {
            const int64_t rows = std::min<int64_t>(mr, mc - ir);
            const float* apanel = ap + (ir / mr) * mr * kc;
            float* cp = c + (ic + ir) * ldc + jc + jr;
            if (rows == mr && cols == nr) {
              uk.fn(kc, apanel, bpanel, cp, ldc, load_c);
            } else {
              uk.fn(kc, apanel, bpanel, tile, nr, false);
              for (int64_t i = 0; i < rows; ++i)
                for (int64_t j = 0; j < cols; ++j)
                  cp[i * ldc + j] = load_c ? cp[i * ldc + j] + tile[i * nr + j] : tile[i * nr + j];
            }
          }
        }
      }
    }
  }
}

}  // namespace

const char* gemm_isa() { return kernel().isa; }

void sgemm_on_thread(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a, const float* b,
                     int64_t ldb, bool trans_b, float* c, int64_t ldc, bool accumulate) {
  gemm_block(kernel(), m, n, k, a, lda, trans_a, b, ldb, trans_b, c, ldc, accumulate);
}

void sgemm_batched_own(const GemmArgs& g) {
  const MicroKernel& uk = kernel();
  const int64_t m = g.m, n = g.n, k = g.k;
  const int64_t lda = g.trans_a ? m : k;
  const int64_t ldb = g.trans_b ? k : n;
  const int64_t a_size = m * k, b_size = k * n, c_size = m * n;
  ThreadPool& pool = global_pool();
  const double flops = 2.0 * static_cast<double>(g.batch) * m * n * k;
  const int threads = flops < 2e5 ? 1 : pool.size();

  // Split each matrix into `splits` column (or row) ranges when there are fewer matrices than threads.
  int64_t splits = 1;
  bool split_cols = true;
  if (g.batch < threads) {
    const int64_t want = (threads + g.batch - 1) / g.batch;
    const int64_t col_panels = (n + uk.nr - 1) / uk.nr, row_panels = (m + uk.mr - 1) / uk.mr;
    split_cols = col_panels >= want || col_panels >= row_panels;
    splits = std::max<int64_t>(1, std::min(want, split_cols ? col_panels : row_panels));
  }
  const int64_t unit = split_cols ? uk.nr : uk.mr;
  const int64_t extent = split_cols ? n : m;
  const int64_t units = (extent + unit - 1) / unit;

  auto task = [&](int64_t t) {
    const int64_t bi = t / splits, part = t % splits;
    const int64_t ai = g.a_index ? g.a_index[bi] : (g.a_batches == 1 ? 0 : bi);
    const int64_t bj = g.b_index ? g.b_index[bi] : (g.b_batches == 1 ? 0 : bi);
    const float* a = g.a + ai * a_size;
    const float* b = g.b + bj * b_size;
    float* c = g.c + bi * c_size;
    const int64_t u0 = units * part / splits, u1 = units * (part + 1) / splits;
    const int64_t lo = std::min(extent, u0 * unit), hi = std::min(extent, u1 * unit);
    if (hi <= lo) return;
    if (split_cols) {
      gemm_block(uk, m, hi - lo, k, a, lda, g.trans_a, g.trans_b ? b + lo * ldb : b + lo, ldb, g.trans_b, c + lo, n,
                 g.accumulate);
    } else {
      gemm_block(uk, hi - lo, n, k, g.trans_a ? a + lo : a + lo * lda, lda, g.trans_a, b, ldb, g.trans_b,
                 c + lo * n, n, g.accumulate);
    }
  };
  const int64_t tasks = g.batch * splits;
  if (threads == 1) {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  } else {
    pool.run(tasks, task);
  }
}

}  // namespace zf
