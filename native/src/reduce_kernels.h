// Elementwise reduction kernels over float32, int32, float16 and bfloat16 with runtime ISA dispatch.
// 16-bit floats are widened to fp32, reduced in fp32, and rounded once (round-to-nearest-even) on store.
#pragma once
#include <cstddef>
#include <cstdint>

namespace zf {

/** Wire dtypes; the numbering is shared with the JS side. */
enum DType : uint32_t { kF32 = 0, kF16 = 1, kBF16 = 2, kI32 = 3 };
/** Reductions; the numbering is shared with the JS side. */
enum ROp : uint32_t { kSum = 0, kAvg = 1, kMax = 2, kMin = 3 };

size_t dtype_size(uint32_t dtype);

/**
 * dst1[i] (and dst2[i] when dst2 != nullptr) = srcs[0][i] op srcs[1][i] op ... op srcs[n-1][i], folded in
 * source order so the result is bit-identical whatever ISA runs it. `avg` divides the sum by `divisor`
 * (integer division truncating toward zero for int32). dst1 may alias a source at the same offsets.
 * max/min propagate NaN.
 */
void reduce(uint32_t dtype, uint32_t op, void* dst1, void* dst2, const void* const* srcs, int nsrc, size_t count,
            int divisor);

/** The instruction set the dispatcher picked: "avx512", "avx2" or "generic". */
const char* reduce_isa();

/** Scalar conversions (used by the generic path and exposed for tests). */
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

}  // namespace zf
