// Which per-ISA copy of an element-wise kernel family to run (pointwise, math, fused, attention: each compiles
// its loops for portable C++, AVX2+FMA and AVX-512 and picks one at load time). ZEROFLOW_POINTWISE_ISA=avx2 or
// generic caps the choice, so tests can compare the paths bit for bit.
#pragma once

#include <cstdlib>
#include <cstring>

namespace zf {

enum class IsaLevel { generic, avx2, avx512 };

// The best level this CPU and the cap allow. AVX-512 needs F, DQ and VL, and BW where `need_bw` (the families
// whose loops use byte/word instructions); AVX2 needs FMA (and has F16C on every CPU that has AVX2).
inline IsaLevel pointwise_isa_level(bool need_bw) {
  const char* cap = std::getenv("ZEROFLOW_POINTWISE_ISA");
  const bool allow512 = !cap || std::strcmp(cap, "avx512") == 0;
  const bool allow2 = allow512 || (cap && std::strcmp(cap, "avx2") == 0);
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (allow512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && (!need_bw || __builtin_cpu_supports("avx512bw"))) {
    return IsaLevel::avx512;
  }
  if (allow2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return IsaLevel::avx2;
#else
  (void)allow512;
  (void)allow2;
  (void)need_bw;
#endif
  return IsaLevel::generic;
}

}  // namespace zf
