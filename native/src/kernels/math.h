// Unary math, axis reductions and fp32 <-> fp16/bf16 conversions for @zeroflow/backend-native and core's
// 16-bit storage (numeric/half.ts). Same scheme as pointwise.h: loops compiled for AVX-512, AVX2 (+F16C) and
// portable C++, picked at load time (ZEROFLOW_POINTWISE_ISA caps it); large inputs run on the persistent
// pool in chunks cut at fixed boundaries, so results never depend on the thread count.
#pragma once

#include <cstdint>

namespace zf {

// Unary ops, computed as tfjs's cpu kernel computes them (in double where tfjs uses Math.*, then rounded to
// float32), so results match it to the last bit or within an ulp of libm differences; tanh is the exception
// (vectorised float code, a few ulp).
enum class UnaryOp : int {
  kNeg = 0,         // x * -1
  kSquare = 1,      // x * x
  kSqrt = 2,        // sqrt(x)
  kRsqrt = 3,       // 1 / sqrt(x)
  kTanh = 4,        // tanh(x) in float, within ~2e-7 relative of Math.tanh (a polynomial and exp)
  kPow = 5,         // pow(x, param)
  kAbs = 6,         // |x|
  kReciprocal = 7,  // 1 / x
  kLog = 8,         // log(x)
  kSigmoid = 9,     // 1 / (1 + exp(-x))
  kRelu = 10,       // Math.max(0, x): NaN kept, -0 -> +0
};
constexpr int kUnaryOpCount = 11;
void unary_f32(UnaryOp op, double param, const float* x, float* out, int64_t n);

// Reductions of x viewed as [outer, r, inner] over the middle axis: out[o * inner + i]. Sum and mean add in
// double (as tfjs's Sum kernel does) in an order that depends only on the shape; mean divides each value by
// r first (float32), as tfjs's Mean kernel does. Max and min propagate NaN like tfjs.
enum class ReduceOp : int { kSum = 0, kMax = 1, kMin = 2, kMean = 3 };
void reduce_f32(ReduceOp op, const float* x, float* out, int64_t outer, int64_t r, int64_t inner);

// fp32 <-> 16-bit conversions, bit-identical to packages/core/src/numeric/half.ts: round to nearest even,
// NaN kept quiet with its sign and payload top, fp16 subnormals and infinities exact. `bf16` picks the format.
void narrow_16(const float* src, uint16_t* dst, int64_t n, bool bf16);
void widen_16(const uint16_t* src, float* dst, int64_t n, bool bf16);
void round_16_in_place(float* a, int64_t n, bool bf16);

// The instruction set of the conversions (avx512, avx2+f16c or generic).
const char* half_isa();

}  // namespace zf
