// Single-precision matrix multiply for the tfjs backend: row-major, batched, with transposes and batch
// broadcasting. OpenBLAS's cblas_sgemm when the addon was built against it (large matrices), otherwise (and
// for batches of small matrices) our own blocked kernel on the process-wide thread pool.
#pragma once

#include <cstdint>

namespace zf {

struct GemmArgs {
  const float* a;  // batch_a matrices of op(A) shape [m, k] (stored [k, m] when trans_a)
  const float* b;  // batch_b matrices of op(B) shape [k, n] (stored [n, k] when trans_b)
  float* c;        // batch matrices [m, n]
  int64_t batch, m, n, k;
  bool trans_a, trans_b;
  bool accumulate;          // C += A.B instead of C = A.B
  const int32_t* a_index;   // per output batch, which A matrix (null: a_stride_batches * i)
  const int32_t* b_index;   // likewise for B
  int64_t a_batches;        // A matrices held (1 broadcasts one to every batch when a_index is null)
  int64_t b_batches;
};

void sgemm_batched(const GemmArgs& args);

// Our own kernel only (never BLAS): tests compare both engines.
void sgemm_batched_own(const GemmArgs& args);

// One C[m, n] (+)= op(A) op(B) with leading dimensions, on the calling thread only (our own kernel, never BLAS,
// never the pool): for kernels that already run one task per pool thread (attention.cc).
void sgemm_on_thread(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, bool trans_a, const float* b,
                     int64_t ldb, bool trans_b, float* c, int64_t ldc, bool accumulate);

// Opt-in bf16 compute (gemm_amx.cc): inputs rounded to bf16, products accumulated in fp32 on Intel AMX.
// Returns false (and does nothing) when AMX is unavailable (CPU, OS or kernel permission).
bool sgemm_batched_bf16(const GemmArgs& args);
bool amx_bf16_available();

// "openblas" when the addon links OpenBLAS, else "none".
const char* gemm_blas();
// The instruction set of our own kernel: avx512, avx2 or generic.
const char* gemm_isa();

// Threads for the kernels (our pool and OpenBLAS's, which never run at the same time).
int kernel_threads();
void set_kernel_threads(int threads);

}  // namespace zf
