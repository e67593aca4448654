// Engine choice for sgemm_batched. With OpenBLAS (ZF_HAVE_OPENBLAS, set by the build when cblas.h and
// libopenblas were found) large matrices go to cblas_sgemm, one matrix at a time, with OpenBLAS's own threads
// set to our pool's size; batches of small matrices (attention heads) go to our kernel, which spreads the
// batch over our pool. The two pools never run at once: every call is synchronous on the JS thread.
// ZEROFLOW_GEMM=own forces our kernel everywhere.
#include <cstdlib>
#include <cstring>

#include "gemm.h"
#include "thread_pool.h"

#ifdef ZF_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace zf {

namespace {

bool use_blas_env() {
  const char* env = std::getenv("ZEROFLOW_GEMM");
  return !(env && std::strcmp(env, "own") == 0);
}

#ifdef ZF_HAVE_OPENBLAS
// Below this many flops per matrix, a batch is faster spread over our pool than handed to OpenBLAS matrix by
// matrix (OpenBLAS runs small matrices on one thread and pays its call overhead each time).
constexpr double kBlasMinFlopsPerMatrix = 2.0 * 96 * 96 * 96;

void sync_blas_threads() {
  static int set_to = 0;
  const int want = global_pool().size();
  if (set_to != want) {
    openblas_set_num_threads(want);
    set_to = want;
  }
}
#endif

}  // namespace

const char* gemm_blas() {
#ifdef ZF_HAVE_OPENBLAS
  return "openblas";
#else
  return "none";
#endif
}

int kernel_threads() { return global_pool().size(); }

void set_kernel_threads(int threads) { set_global_pool_threads(threads); }

void sgemm_batched(const GemmArgs& g) {
#ifdef ZF_HAVE_OPENBLAS
  static const bool blas_allowed = use_blas_env();
  const double flops_per_matrix = 2.0 * static_cast<double>(g.m) * g.n * g.k;
  if (blas_allowed && g.m > 0 && g.n > 0 && g.k > 0 && (g.batch == 1 || flops_per_matrix >= kBlasMinFlopsPerMatrix)) {
    sync_blas_threads();
    const int64_t lda = g.trans_a ? g.m : g.k;
    const int64_t ldb = g.trans_b ? g.k : g.n;
    for (int64_t bi = 0; bi < g.batch; ++bi) {
      const int64_t ai = g.a_index ? g.a_index[bi] : (g.a_batches == 1 ? 0 : bi);
      const int64_t bj = g.b_index ? g.b_index[bi] : (g.b_batches == 1 ? 0 : bi);
      cblas_sgemm(CblasRowMajor, g.trans_a ? CblasTrans : CblasNoTrans, g.trans_b ? CblasTrans : CblasNoTrans,
                  static_cast<blasint>(g.m), static_cast<blasint>(g.n), static_cast<blasint>(g.k), 1.0f,
                  g.a + ai * g.m * g.k, static_cast<blasint>(lda), g.b + bj * g.k * g.n, static_cast<blasint>(ldb),
                  g.accumulate ? 1.0f : 0.0f, g.c + bi * g.m * g.n, static_cast<blasint>(g.n));
    }
    return;
  }
#endif
  sgemm_batched_own(g);
}

}  // namespace zf
