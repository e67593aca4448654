// Dispatch and threading of the math kernels (math.h). The loops live in math_impl.inc, compiled three times
// (portable, AVX2, AVX-512) and picked once at load time; the fp16 conversions use the F16C / AVX-512
// conversion instructions with NaNs patched to half.ts's patterns (hardware widening quiets signalling NaNs,
// half.ts keeps them as they are). bf16 is integer work and never uses AVX512-BF16's vcvtneps2bf16, which
// flushes fp32 subnormals to zero and so would differ from half.ts.
#include "math.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "isa_level.h"
#include "thread_pool.h"

namespace zf {

namespace generic {
#include "math_impl.inc"
static void narrow_fp16_range(const uint32_t* src, uint16_t* dst, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) dst[i] = fp16_from_bits(src[i]);
}
static void widen_fp16_range(const uint16_t* src, uint32_t* dst, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) dst[i] = bits_from_fp16(src[i]);
}
static void round_fp16_range(uint32_t* a, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) a[i] = bits_from_fp16(fp16_from_bits(a[i]));
}
}  // namespace generic

#if defined(__x86_64__) || defined(__i386__)
#define ZF_MATH_X86 1
namespace avx2 {
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#include "math_impl.inc"
// 8 lanes: vcvtps2ph (round to nearest even; exact for subnormals) then NaN lanes replaced by half.ts's pattern.
static inline __m128i narrow8(__m256i bits) {
  const __m256i abs = _mm256_and_si256(bits, _mm256_set1_epi32(0x7fffffff));
  const __m256i nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
  __m128i h = _mm256_cvtps_ph(_mm256_castsi256_ps(bits), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  if (!_mm256_testz_si256(nan, nan)) {
    const __m256i sign = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(0x8000));
    const __m256i pay = _mm256_and_si256(_mm256_srli_epi32(abs, 13), _mm256_set1_epi32(0x3ff));
    const __m256i fix = _mm256_or_si256(_mm256_or_si256(sign, _mm256_set1_epi32(0x7e00)), pay);
    const __m256i wide = _mm256_blendv_epi8(_mm256_cvtepu16_epi32(h), fix, nan);
    h = _mm_packus_epi32(_mm256_castsi256_si128(wide), _mm256_extracti128_si256(wide, 1));
  }
  return h;
}
static inline __m256i widen8(__m128i h) {
  __m256i bits = _mm256_castps_si256(_mm256_cvtph_ps(h));
  const __m256i h32 = _mm256_cvtepu16_epi32(h);
  const __m256i habs = _mm256_and_si256(h32, _mm256_set1_epi32(0x7fff));
  const __m256i nan = _mm256_cmpgt_epi32(habs, _mm256_set1_epi32(0x7c00));
  if (!_mm256_testz_si256(nan, nan)) {
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(h32, _mm256_set1_epi32(0x8000)), 16);
    const __m256i mant = _mm256_slli_epi32(_mm256_and_si256(h32, _mm256_set1_epi32(0x3ff)), 13);
    const __m256i fix = _mm256_or_si256(_mm256_or_si256(sign, _mm256_set1_epi32(0x7f800000)), mant);
    bits = _mm256_blendv_epi8(bits, fix, nan);
  }
  return bits;
}
static void narrow_fp16_range(const uint32_t* src, uint16_t* dst, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), narrow8(b));
  }
  for (; i < end; ++i) dst[i] = fp16_from_bits(src[i]);
}
static void widen_fp16_range(const uint16_t* src, uint32_t* dst, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), widen8(h));
  }
  for (; i < end; ++i) dst[i] = bits_from_fp16(src[i]);
}
static void round_fp16_range(uint32_t* a, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(a + i), widen8(narrow8(b)));
  }
  for (; i < end; ++i) a[i] = bits_from_fp16(fp16_from_bits(a[i]));
}
#pragma GCC pop_options
}  // namespace avx2

namespace avx512 {
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma,f16c")
#include "math_impl.inc"
static inline __m256i narrow16(__m512i bits) {
  const __m512i abs = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff));
  const __mmask16 nan = _mm512_cmpgt_epi32_mask(abs, _mm512_set1_epi32(0x7f800000));
  __m256i h = _mm512_cvtps_ph(_mm512_castsi512_ps(bits), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  if (nan) {
    const __m512i sign = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x8000));
    const __m512i pay = _mm512_and_si512(_mm512_srli_epi32(abs, 13), _mm512_set1_epi32(0x3ff));
    const __m512i fix = _mm512_or_si512(_mm512_or_si512(sign, _mm512_set1_epi32(0x7e00)), pay);
    h = _mm512_cvtepi32_epi16(_mm512_mask_mov_epi32(_mm512_cvtepu16_epi32(h), nan, fix));
  }
  return h;
}
static inline __m512i widen16(__m256i h) {
  __m512i bits = _mm512_castps_si512(_mm512_cvtph_ps(h));
  const __m512i h32 = _mm512_cvtepu16_epi32(h);
  const __m512i habs = _mm512_and_si512(h32, _mm512_set1_epi32(0x7fff));
  const __mmask16 nan = _mm512_cmpgt_epi32_mask(habs, _mm512_set1_epi32(0x7c00));
  if (nan) {
    const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(h32, _mm512_set1_epi32(0x8000)), 16);
    const __m512i mant = _mm512_slli_epi32(_mm512_and_si512(h32, _mm512_set1_epi32(0x3ff)), 13);
    bits = _mm512_mask_mov_epi32(bits, nan, _mm512_or_si512(_mm512_or_si512(sign, _mm512_set1_epi32(0x7f800000)), mant));
  }
  return bits;
}
static void narrow_fp16_range(const uint32_t* src, uint16_t* dst, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) {
    const __m512i b = _mm512_loadu_si512(src + i);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), narrow16(b));
  }
  for (; i < end; ++i) dst[i] = fp16_from_bits(src[i]);
}
static void widen_fp16_range(const uint16_t* src, uint32_t* dst, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm512_storeu_si512(dst + i, widen16(h));
  }
  for (; i < end; ++i) dst[i] = bits_from_fp16(src[i]);
}
static void round_fp16_range(uint32_t* a, int64_t begin, int64_t end) {
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) _mm512_storeu_si512(a + i, widen16(narrow16(_mm512_loadu_si512(a + i))));
  for (; i < end; ++i) a[i] = bits_from_fp16(fp16_from_bits(a[i]));
}
#pragma GCC pop_options
}  // namespace avx512
#endif

namespace {

struct Impl {
  void (*unary_range)(int, double, const float*, float*, int64_t, int64_t);
  void (*reduce_rows)(int, const float*, float*, int64_t, int64_t, int64_t);
  void (*reduce_cols)(int, const float*, float*, int64_t, int64_t, int64_t, int64_t, int64_t);
  void (*narrow_bf16)(const uint32_t*, uint16_t*, int64_t, int64_t);
  void (*widen_bf16)(const uint16_t*, uint32_t*, int64_t, int64_t);
  void (*round_bf16)(uint32_t*, int64_t, int64_t);
  void (*narrow_fp16)(const uint32_t*, uint16_t*, int64_t, int64_t);
  void (*widen_fp16)(const uint16_t*, uint32_t*, int64_t, int64_t);
  void (*round_fp16)(uint32_t*, int64_t, int64_t);
  const char* isa;
};

#define ZF_MATH_IMPL(ns, name)                                                                             \
  Impl {                                                                                                   \
    ns::unary_range, ns::reduce_rows, ns::reduce_cols, ns::narrow_bf16_range, ns::widen_bf16_range,        \
        ns::round_bf16_range, ns::narrow_fp16_range, ns::widen_fp16_range, ns::round_fp16_range, name      \
  }

Impl pick() {
#ifdef ZF_MATH_X86
  switch (pointwise_isa_level(true)) {
    case IsaLevel::avx512:
      return ZF_MATH_IMPL(avx512, "avx512");
    case IsaLevel::avx2:
      return ZF_MATH_IMPL(avx2, "avx2+f16c");
    case IsaLevel::generic:
      break;
  }
#endif
  return ZF_MATH_IMPL(generic, "generic");
}

const Impl& impl() {
  static const Impl chosen = pick();
  return chosen;
}

constexpr int64_t kChunk = 32768;  // a multiple of 16, so chunks never share an output cache line
}  // namespace

void unary_f32(UnaryOp op, double param, const float* x, float* out, int64_t n) {
  const auto fn = impl().unary_range;
  // libm calls cost ~10x a multiply: smaller chunks for them so that mid-size tensors use both cores.
  const int64_t chunk = static_cast<int>(op) <= 1 || op == UnaryOp::kAbs || op == UnaryOp::kRelu ? kChunk : kChunk / 8;
  for_chunks(n, chunk, [&](int64_t b, int64_t e) { fn(static_cast<int>(op), param, x, out, b, e); });
}

void reduce_f32(ReduceOp op, const float* x, float* out, int64_t outer, int64_t r, int64_t inner) {
  if (outer <= 0 || inner <= 0 || r <= 0) return;
  const int o = static_cast<int>(op);
  const Impl& im = impl();
  if (inner == 1) {
    const int64_t rows_per_chunk = std::max<int64_t>(1, kChunk / r);
    for_chunks(outer, rows_per_chunk, [&](int64_t b, int64_t e) { im.reduce_rows(o, x, out, b, e, r); });
    return;
  }
  // Tasks are (block, column range) pairs: column ranges of at least 64 and about kChunk elements of input.
  const int64_t cols = std::min(inner, std::max<int64_t>(64, kChunk / r));
  const int64_t per_block = (inner + cols - 1) / cols;
  const int64_t tasks = outer * per_block;
  auto task = [&](int64_t t) {
    const int64_t blk = t / per_block, c = t % per_block;
    im.reduce_cols(o, x, out, blk, c * cols, std::min(inner, (c + 1) * cols), r, inner);
  };
  if (tasks == 1 || outer * r * inner < kChunk) {
    for (int64_t t = 0; t < tasks; ++t) task(t);
  } else {
    global_pool().run(tasks, task);
  }
}

void narrow_16(const float* src, uint16_t* dst, int64_t n, bool bf16) {
  const auto* s = reinterpret_cast<const uint32_t*>(src);
  const auto fn = bf16 ? impl().narrow_bf16 : impl().narrow_fp16;
  for_chunks(n, kChunk * 4, [&](int64_t b, int64_t e) { fn(s, dst, b, e); });
}

void widen_16(const uint16_t* src, float* dst, int64_t n, bool bf16) {
  auto* d = reinterpret_cast<uint32_t*>(dst);
  const auto fn = bf16 ? impl().widen_bf16 : impl().widen_fp16;
  for_chunks(n, kChunk * 4, [&](int64_t b, int64_t e) { fn(src, d, b, e); });
}

void round_16_in_place(float* a, int64_t n, bool bf16) {
  auto* bits = reinterpret_cast<uint32_t*>(a);
  const auto fn = bf16 ? impl().round_bf16 : impl().round_fp16;
  for_chunks(n, kChunk * 4, [&](int64_t b, int64_t e) { fn(bits, b, e); });
}

const char* half_isa() { return impl().isa; }

}  // namespace zf
