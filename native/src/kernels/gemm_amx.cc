// Opt-in bf16 matrix multiply on Intel AMX (tdpbf16ps): C (+)= bf16(op(A)) . bf16(op(B)) with fp32
// accumulation, for the backend's `matmul precision bf16` mode (like PyTorch's autocast to bf16 on CPU). The
// inputs are rounded to bf16 (nearest even, as core's half.ts) while they are packed tile by tile (B in AMX's
// pair-interleaved layout), zero padded to whole tiles; each pool task computes a 32-row block of C with 2x2
// tiles of 16x16 fp32. Every C element is computed by one task in a fixed k order, so
// results do not depend on the thread count. AMX's dot products treat bf16 subnormal inputs as zero and
// flush subnormal results (documented; fp32 mode is unaffected).
// Availability needs the CPU (CPUID AMX-TILE and AMX-BF16), the OS (XCR0 tile state) and the kernel's
// permission (arch_prctl ARCH_REQ_XCOMP_PERM, Linux >= 5.16); otherwise amx_bf16_available() is false and
// the caller keeps fp32.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "thread_pool.h"

// AMX intrinsics need GCC >= 11 or clang >= 12; older compilers build the addon without this path.
#if defined(__clang__)
#define ZF_AMX_COMPILER (__clang_major__ >= 12)
#elif defined(__GNUC__)
#define ZF_AMX_COMPILER (__GNUC__ >= 11)
#else
#define ZF_AMX_COMPILER 0
#endif

#if defined(__x86_64__) && defined(__linux__) && ZF_AMX_COMPILER
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define ZF_AMX_POSSIBLE 1
#endif

namespace zf {

namespace {

inline uint16_t to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

#ifdef ZF_AMX_POSSIBLE
bool detect_amx() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool amx_bf16 = (edx >> 22) & 1, amx_tile = (edx >> 24) & 1;
  if (!amx_bf16 || !amx_tile) return false;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !((ecx >> 27) & 1)) return false;  // OSXSAVE
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

struct TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

constexpr int64_t kBlock = 32;  // C block edge: 2x2 tiles of 16x16
constexpr int64_t kStep = 32;   // k per tile step (a tile: 16 rows of 64 bytes)
constexpr int64_t kTile = 512;  // uint16 values per packed tile (1 KiB, contiguous: stride 64 bytes)

// Packed layouts, tile by tile so that every tile load reads one contiguous KiB:
//  A block (32 rows): tile (ks, h) holds rows h*16..h*16+15, k = ks*32..ks*32+31      -> apack[(ks*2 + h) * 512]
//  B: tile (jb, ks, h) holds k pairs ks*16..ks*16+15 of columns jb*32 + h*16 .. +15,
//     each row 16 columns x (k even, k odd)                                           -> bpack[((jb*nks + ks)*2 + h) * 512]

// C block rows [i0, i0 + 32) x every column block, from the packed A block and packed B.
__attribute__((target("amx-tile,amx-bf16,avx512f"))) void block_row(const uint16_t* ap, const uint16_t* bp,
                                                                       int64_t nks, int64_t njb, float* c,
                                                                       int64_t i0, int64_t m, int64_t n,
                                                                       bool accumulate) {
  thread_local bool configured = false;
  if (!configured) {
    TileConfig cfg;
    for (int t = 0; t < 8; ++t) {
      cfg.rows[t] = 16;
      cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    configured = true;
  }
  alignas(64) float tmp[kBlock * kBlock];
  for (int64_t jb = 0; jb < njb; ++jb) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const uint16_t* bj = bp + jb * nks * 2 * kTile;
    for (int64_t ks = 0; ks < nks; ++ks) {
      _tile_loadd(4, ap + (ks * 2) * kTile, 64);
      _tile_loadd(5, ap + (ks * 2 + 1) * kTile, 64);
      _tile_loadd(6, bj + (ks * 2) * kTile, 64);
      _tile_loadd(7, bj + (ks * 2 + 1) * kTile, 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      _tile_dpbf16ps(2, 5, 6);
      _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, tmp, kBlock * 4);
    _tile_stored(1, tmp + 16, kBlock * 4);
    _tile_stored(2, tmp + 16 * kBlock, kBlock * 4);
    _tile_stored(3, tmp + 16 * kBlock + 16, kBlock * 4);
    const int64_t j0 = jb * kBlock;
    const int64_t rows = std::min(kBlock, m - i0), cols = std::min(kBlock, n - j0);
    for (int64_t r = 0; r < rows; ++r) {
      float* cr = c + (i0 + r) * n + j0;
      const float* tr = tmp + r * kBlock;
      if (accumulate) {
        for (int64_t q = 0; q < cols; ++q) cr[q] += tr[q];
      } else {
        std::memcpy(cr, tr, cols * sizeof(float));
      }
    }
  }
}

// 16 floats rounded to bf16 (nearest even, NaN kept quiet), each in the low half of a 32-bit lane.
__attribute__((target("avx512f,avx512bw"))) inline __m512i bf16x16(const float* src) {
  const __m512i bits = _mm512_loadu_si512(src);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i rounded = _mm512_srli_epi32(
      _mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7fff)), _mm512_and_si512(_mm512_srli_epi32(bits, 16), one)),
      16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40)));
}

// Packs op(B) columns of block jb (all k) into its tiles; zero padded.
__attribute__((target("avx512f,avx512bw"))) void pack_b_block(const float* b, bool trans_b, int64_t k, int64_t n,
                                                               int64_t jb, int64_t nks, uint16_t* out) {
  for (int64_t ks = 0; ks < nks; ++ks) {
    for (int h = 0; h < 2; ++h) {
      uint16_t* tile = out + (ks * 2 + h) * kTile;
      const int64_t j0 = jb * kBlock + h * 16;
      for (int r = 0; r < 16; ++r) {
        const int64_t k0 = (ks * 16 + r) * 2;
        if (!trans_b && j0 + 16 <= n && k0 + 2 <= k) {
          // a tile row: 16 columns of the two k rows, interleaved as 32-bit (even | odd << 16) words
          const __m512i even = bf16x16(b + k0 * n + j0);
          const __m512i odd = bf16x16(b + (k0 + 1) * n + j0);
          _mm512_storeu_si512(tile + r * 32, _mm512_or_si512(even, _mm512_slli_epi32(odd, 16)));
          continue;
        }
        for (int col = 0; col < 16; ++col) {
          const int64_t j = jb * kBlock + h * 16 + col;
          for (int t = 0; t < 2; ++t) {
            const int64_t kk = k0 + t;
            const float v = (j < n && kk < k) ? (trans_b ? b[j * k + kk] : b[kk * n + j]) : 0.0f;
            tile[r * 32 + col * 2 + t] = to_bf16(v);
          }
        }
      }
    }
  }
}

// Packs rows [i0, i0 + 32) of op(A) (all k) into the block's tiles; zero padded.
__attribute__((target("avx512f,avx512bw"))) void pack_a_block(const float* a, bool trans_a, int64_t m, int64_t k,
                                                               int64_t i0, int64_t nks, uint16_t* out) {
  for (int64_t ks = 0; ks < nks; ++ks) {
    for (int h = 0; h < 2; ++h) {
      uint16_t* tile = out + (ks * 2 + h) * kTile;
      for (int r = 0; r < 16; ++r) {
        const int64_t i = i0 + h * 16 + r;
        if (!trans_a && i < m && (ks + 1) * kStep <= k) {
          const float* src = a + i * k + ks * kStep;
          const __m512i lo = bf16x16(src), hi = bf16x16(src + 16);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile + r * 32), _mm512_cvtepi32_epi16(lo));
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(tile + r * 32 + 16), _mm512_cvtepi32_epi16(hi));
          continue;
        }
        for (int q = 0; q < 32; ++q) {
          const int64_t kk = ks * kStep + q;
          const float v = (i < m && kk < k) ? (trans_a ? a[kk * m + i] : a[i * k + kk]) : 0.0f;
          tile[r * 32 + q] = to_bf16(v);
        }
      }
    }
  }
}
#endif

}  // namespace

bool amx_bf16_available() {
#ifdef ZF_AMX_POSSIBLE
  static const bool ok = detect_amx();
  return ok;
#else
  return false;
#endif
}

bool sgemm_batched_bf16(const GemmArgs& g) {
#ifdef ZF_AMX_POSSIBLE
  if (!amx_bf16_available()) return false;
  if (g.m <= 0 || g.n <= 0) return true;
  const int64_t m = g.m, n = g.n, k = g.k;
  const int64_t nks = std::max<int64_t>(1, (k + kStep - 1) / kStep);
  const int64_t njb = (n + kBlock - 1) / kBlock;
  const int64_t row_blocks = (m + kBlock - 1) / kBlock;
  std::vector<uint16_t> bpack(static_cast<size_t>(njb * nks * 2 * kTile));
  for (int64_t bi = 0; bi < g.batch; ++bi) {
    const int64_t ai = g.a_index ? g.a_index[bi] : (g.a_batches == 1 ? 0 : bi);
    const int64_t bj = g.b_index ? g.b_index[bi] : (g.b_batches == 1 ? 0 : bi);
    const float* a = g.a + ai * m * k;
    const float* b = g.b + bj * k * n;
    float* c = g.c + bi * m * n;
    global_pool().run(njb, [&](int64_t jb) { pack_b_block(b, g.trans_b, k, n, jb, nks, bpack.data() + jb * nks * 2 * kTile); });
    // one task per 32-row block of C; A's block packed by the task (thread-local buffer)
    global_pool().run(row_blocks, [&](int64_t rb) {
      thread_local std::vector<uint16_t> apack;
      apack.resize(static_cast<size_t>(nks * 2 * kTile));
      pack_a_block(a, g.trans_a, m, k, rb * kBlock, nks, apack.data());
      block_row(apack.data(), bpack.data(), nks, njb, c, rb * kBlock, m, n, g.accumulate);
    });
  }
  return true;
#else
  (void)g;
  return false;
#endif
}

}  // namespace zf
