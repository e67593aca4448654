// Dense transpose of 4-byte elements (pointwise.h). The permutation is first simplified (size-1 axes
// dropped, output axes that stay adjacent in the input merged), so [B,T,H,D] -> [B,H,T,D] becomes a
// 3-axis permutation copying runs of D, and a 2-D transpose stays one. Then:
//  - the innermost axis stays innermost: copy contiguous runs (memcpy);
//  - otherwise: 16x16 tiles between the output's innermost axis and the axis that is innermost in the input,
//    so both sides stream through cache lines.
// Work is split over the pool by outer rows / tile rows; every element is a plain copy, so results are exact.
#include <algorithm>
#include <cstring>
#include <vector>

#include "pointwise.h"
#include "thread_pool.h"

namespace zf {
namespace {

constexpr int64_t kTile = 16;
constexpr int64_t kParallelElements = 65536;

// The output coordinates of flat index `index` over dims `dims` (row-major), dotted with `strides`.
int64_t offset_of(int64_t index, const std::vector<int64_t>& dims, const std::vector<int64_t>& strides) {
  int64_t off = 0;
  for (int d = static_cast<int>(dims.size()) - 1; d >= 0; --d) {
    off += (index % dims[d]) * strides[d];
    index /= dims[d];
  }
  return off;
}

}  // namespace

void transpose_32(const uint32_t* x, uint32_t* out, const int64_t* shape, const int* perm, int rank) {
  int64_t total = 1;
  for (int i = 0; i < rank; ++i) total *= shape[i];
  if (total == 0) return;
  // Simplify: keep the input axes of size > 1 (renumbered), then merge output-adjacent runs.
  std::vector<int> keep_index(rank, -1);
  std::vector<int64_t> in_dims;
  for (int i = 0; i < rank; ++i) {
    if (shape[i] > 1) {
      keep_index[i] = static_cast<int>(in_dims.size());
      in_dims.push_back(shape[i]);
    }
  }
  std::vector<int> p;  // output axis -> (renumbered) input axis
  for (int i = 0; i < rank; ++i) {
    if (keep_index[perm[i]] >= 0) p.push_back(keep_index[perm[i]]);
  }
  // Groups of output axes whose input axes are consecutive: each group becomes one axis.
  std::vector<std::pair<int, int>> groups;  // [first input axis, last input axis], in output order
  for (int a : p) {
    if (!groups.empty() && groups.back().second + 1 == a) {
      groups.back().second = a;
    } else {
      groups.push_back({a, a});
    }
  }
  const int r = static_cast<int>(groups.size());
  if (r <= 1) {
    std::memcpy(out, x, static_cast<size_t>(total) * 4);
    return;
  }
  // Input strides of the merged axes: order the groups by input position.
  std::vector<int> by_input(r);
  for (int i = 0; i < r; ++i) by_input[i] = i;
  std::sort(by_input.begin(), by_input.end(), [&](int u, int v) { return groups[u].first < groups[v].first; });
  std::vector<int64_t> dims(r), in_strides(r);
  for (int i = 0; i < r; ++i) {
    int64_t size = 1;
    for (int a = groups[i].first; a <= groups[i].second; ++a) size *= in_dims[a];
    dims[i] = size;
  }
  int64_t stride = 1;
  for (int j = r - 1; j >= 0; --j) {
    in_strides[by_input[j]] = stride;
    stride *= dims[by_input[j]];
  }
  std::vector<int64_t> out_strides(r);
  stride = 1;
  for (int j = r - 1; j >= 0; --j) {
    out_strides[j] = stride;
    stride *= dims[j];
  }
  ThreadPool* pool = total >= kParallelElements ? &global_pool() : nullptr;
  auto run = [&](int64_t tasks, const std::function<void(int64_t)>& task) {
    if (pool) {
      pool->run(tasks, task);
    } else {
      for (int64_t t = 0; t < tasks; ++t) task(t);
    }
  };

  if (in_strides[r - 1] == 1) {
    // Runs of dims[r-1] contiguous elements on both sides.
    const int64_t inner = dims[r - 1];
    const int64_t rows = total / inner;
    std::vector<int64_t> outer_dims(dims.begin(), dims.end() - 1), outer_in(in_strides.begin(), in_strides.end() - 1);
    const int64_t rows_per_task = std::max<int64_t>(1, 16384 / inner);
    run((rows + rows_per_task - 1) / rows_per_task, [&](int64_t t) {
      const int64_t end = std::min(rows, (t + 1) * rows_per_task);
      for (int64_t row = t * rows_per_task; row < end; ++row) {
        std::memcpy(out + row * inner, x + offset_of(row, outer_dims, outer_in), static_cast<size_t>(inner) * 4);
      }
    });
    return;
  }
  // Tiles between output axis L (innermost out, input stride sL) and axis q (input stride 1).
  const int L = r - 1;
  int q = 0;
  for (int i = 0; i < r; ++i) {
    if (in_strides[i] == 1) q = i;
  }
  std::vector<int64_t> rest_dims, rest_in, rest_out;
  for (int i = 0; i < r; ++i) {
    if (i == q || i == L) continue;
    rest_dims.push_back(dims[i]);
    rest_in.push_back(in_strides[i]);
    rest_out.push_back(out_strides[i]);
  }
  const int64_t dq = dims[q], dl = dims[L], sl = in_strides[L], oq = out_strides[q];
  int64_t rest = 1;
  for (int64_t d : rest_dims) rest *= d;
  const int64_t q_tiles = (dq + kTile - 1) / kTile;
  run(rest * q_tiles, [&](int64_t t) {
    const int64_t outer = t / q_tiles;
    const int64_t q0 = (t % q_tiles) * kTile;
    const int64_t q1 = std::min(dq, q0 + kTile);
    const uint32_t* xb = x + offset_of(outer, rest_dims, rest_in);
    uint32_t* ob = out + offset_of(outer, rest_dims, rest_out);
    for (int64_t l0 = 0; l0 < dl; l0 += kTile) {
      const int64_t l1 = std::min(dl, l0 + kTile);
      for (int64_t iq = q0; iq < q1; ++iq) {
        uint32_t* orow = ob + iq * oq;
        const uint32_t* xcol = xb + iq;
        for (int64_t il = l0; il < l1; ++il) orow[il] = xcol[il * sl];
      }
    }
  });
}

}  // namespace zf
