// Runtime ISA dispatch for the reduction kernels: the same body (reduce_impl.inc) is compiled for AVX-512,
// AVX2 and a baseline, and the best one this CPU supports is picked once. Nothing uses -march=native, so
// the addon built here runs on any x86-64 (and non-x86 builds get the baseline only).
#include "reduce_kernels.h"

#include <cstdlib>
#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define ZF_X86 1
#endif

namespace zf {

typedef uint32_t __attribute__((may_alias)) u32a;

float f16_to_f32(uint16_t h) {
  // Exact conversion (subnormals, inf, NaN), after F. Giesen's half_to_float.
  uint32_t o = static_cast<uint32_t>(h & 0x7fffu) << 13;
  const uint32_t exp = o & (0x7c00u << 13);
  o += (127u - 15u) << 23;
  float f;
  if (exp == (0x7c00u << 13)) {
    o += (128u - 16u) << 23;  // inf / NaN
    if (h & 0x3ffu) o |= 0x00400000u;  // NaN comes out quiet, payload kept: what vcvtph2ps does
    std::memcpy(&f, &o, 4);
  } else if (exp == 0) {
    o += 1u << 23;  // zero / subnormal: renormalise through the FPU
    std::memcpy(&f, &o, 4);
    const uint32_t magic_bits = 113u << 23;
    float magic;
    std::memcpy(&magic, &magic_bits, 4);
    f -= magic;
  } else {
    std::memcpy(&f, &o, 4);
  }
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  bits |= static_cast<uint32_t>(h & 0x8000u) << 16;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float value) {
  // Round-to-nearest-even, after F. Giesen's float_to_half_fast3_rtne; matches F16C's vcvtps2ph.
  uint32_t u;
  std::memcpy(&u, &value, 4);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  uint32_t o;
  if (u >= (127u + 16u) << 23) {
    // NaN keeps the top of its payload and comes out quiet, as vcvtps2ph does.
    o = u > (255u << 23) ? 0x7e00u | ((u >> 13) & 0x3ffu) : 0x7c00u;
  } else if (u < (113u << 23)) {
    const uint32_t magic_bits = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    float f, magic;
    std::memcpy(&f, &u, 4);
    std::memcpy(&magic, &magic_bits, 4);
    f += magic;
    std::memcpy(&o, &f, 4);
    o -= magic_bits;
  } else {
    const uint32_t mant_odd = (u >> 13) & 1u;
    u += ((15u - 127u) << 23) + 0xfffu;
    u += mant_odd;
    o = u >> 13;
  }
  return static_cast<uint16_t>(o | (sign >> 16));
}

float bf16_to_f32(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

size_t dtype_size(uint32_t dtype) { return dtype == kF16 || dtype == kBF16 ? 2 : 4; }

namespace generic {
static inline void widen_f16_sw(float* d, const uint16_t* s, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = f16_to_f32(s[i]);
}
static inline void narrow_f16_sw(uint16_t* d, const float* s, size_t n) {
  for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16(s[i]);
}
#define ZF_WIDEN_F16 widen_f16_sw
#define ZF_NARROW_F16 narrow_f16_sw
#include "reduce_impl.inc"
#undef ZF_WIDEN_F16
#undef ZF_NARROW_F16
}  // namespace generic

#ifdef ZF_X86
namespace avx2 {
#pragma GCC push_options
#pragma GCC target("avx2,f16c,fma")
static inline void widen_f16_hw(float* d, const uint16_t* s, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; ++i) d[i] = _cvtsh_ss(s[i]);
}
static inline void narrow_f16_hw(uint16_t* d, const float* s, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) d[i] = _cvtss_sh(s[i], _MM_FROUND_TO_NEAREST_INT);
}
#define ZF_WIDEN_F16 widen_f16_hw
#define ZF_NARROW_F16 narrow_f16_hw
#include "reduce_impl.inc"
#undef ZF_WIDEN_F16
#undef ZF_NARROW_F16
#pragma GCC pop_options
}  // namespace avx2

namespace avx512 {
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx2,f16c,fma")
static inline void widen_f16_hw(float* d, const uint16_t* s, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(d + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(s + i))));
  for (; i < n; ++i) d[i] = _cvtsh_ss(s[i]);
}
static inline void narrow_f16_hw(uint16_t* d, const float* s, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(d + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) d[i] = _cvtss_sh(s[i], _MM_FROUND_TO_NEAREST_INT);
}
#define ZF_WIDEN_F16 widen_f16_hw
#define ZF_NARROW_F16 narrow_f16_hw
#include "reduce_impl.inc"
#undef ZF_WIDEN_F16
#undef ZF_NARROW_F16
#pragma GCC pop_options
}  // namespace avx512
#endif

using ReduceFn = void (*)(uint32_t, uint32_t, void*, void*, const void* const*, int, size_t, int);

static ReduceFn pick(const char** name) {
  // ZEROFLOW_REDUCE_ISA=avx2|generic caps the choice (tests compare the paths bit for bit).
  const char* cap = std::getenv("ZEROFLOW_REDUCE_ISA");
  const bool allow512 = !cap || std::strcmp(cap, "avx512") == 0;
  const bool allow2 = allow512 || std::strcmp(cap, "avx2") == 0;
#ifdef ZF_X86
  __builtin_cpu_init();
  if (allow512 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")) {
    *name = "avx512";
    return avx512::reduce_impl;
  }
  if (allow2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    *name = "avx2";
    return avx2::reduce_impl;
  }
#endif
  *name = "generic";
  return generic::reduce_impl;
}

static const char* g_isa = nullptr;
static const ReduceFn g_reduce = pick(&g_isa);

void reduce(uint32_t dtype, uint32_t op, void* dst1, void* dst2, const void* const* srcs, int nsrc, size_t count,
            int divisor) {
  g_reduce(dtype, op, dst1, dst2, srcs, nsrc, count, divisor);
}

const char* reduce_isa() { return g_isa; }

}  // namespace zf
