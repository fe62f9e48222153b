#include "model/layers/expert_dispatch.h"

#include <omp.h>

#include <algorithm>
#include <cstring>

#include "kernels/matmul.h"

namespace dseek {

void LocalDispatch::dispatch(const Routing& rt, const float* x, int64_t D, std::vector<ExpertBatch>& out) {
  const int64_t R = rt.rows, K = rt.k, E = rt.experts;
  std::vector<int64_t> count(size_t(E), 0);
  for (int64_t i = 0; i < R * K; i++) count[size_t(rt.idx[size_t(i)])]++;
  std::vector<int64_t> slot_of(size_t(E), -1);
  // Batches are reused across calls (their buffers keep their capacity: no allocation or zeroing per forward).
  size_t nbatch = 0;
  for (int64_t e = 0; e < E; e++)
    if (count[size_t(e)] > 0) slot_of[size_t(e)] = int64_t(nbatch++);
  out.resize(nbatch);
  for (int64_t e = 0; e < E; e++) {
    if (slot_of[size_t(e)] < 0) continue;
    ExpertBatch& b = out[size_t(slot_of[size_t(e)])];
    b.expert = e;
    b.n = count[size_t(e)];
    b.nb = b.n <= kGemvMaxRows ? b.n : gemm_row_bucket(b.n);
    b.rows.clear();
    b.slots.clear();
  }
  for (int64_t r = 0; r < R; r++)
    for (int64_t k = 0; k < K; k++) {
      ExpertBatch& b = out[size_t(slot_of[size_t(rt.idx[size_t(r * K + k)])])];
      b.rows.push_back(int32_t(r));
      b.slots.push_back(int32_t(k));
    }
  const bool par = R * D > 65536 && !omp_in_parallel();
#pragma omp parallel for schedule(dynamic, 1) if (par)
  for (size_t i = 0; i < out.size(); i++) {
    ExpertBatch& b = out[i];
    b.x.resize(size_t(b.nb * D));
    for (int64_t j = 0; j < b.n; j++) std::memcpy(b.x.data() + j * D, x + b.rows[size_t(j)] * D, size_t(D) * 4);
    std::fill(b.x.begin() + b.n * D, b.x.end(), 0.0f);  // padding rows
  }
}

void LocalDispatch::combine(const Routing& rt, const std::vector<ExpertBatch>& batches, int64_t D, float* y) {
  const int64_t K = rt.k;
  // Threads own column blocks of y, so every element still sums its experts in index order (deterministic).
  constexpr int64_t kCols = 64;
  const int64_t blocks = (D + kCols - 1) / kCols;
  const bool par = rt.rows * D > 65536 && !omp_in_parallel();
#pragma omp parallel for schedule(static) if (par)
  for (int64_t cb = 0; cb < blocks; cb++) {
    const int64_t d0 = cb * kCols, d1 = std::min(D, d0 + kCols);
    for (const ExpertBatch& b : batches)
      for (int64_t j = 0; j < b.n; j++) {
        const int64_t r = b.rows[size_t(j)];
        const float wk = rt.weight[size_t(r * K + b.slots[size_t(j)])];
        const float* src = b.y.data() + j * D;
        float* dst = y + r * D;
#pragma omp simd
        for (int64_t d = d0; d < d1; d++) dst[d] += wk * src[d];
      }
  }
}

void LocalDispatch::combine_backward(const Routing& rt, const std::vector<ExpertBatch>& batches, const float* dy,
                                     int64_t D, std::vector<std::vector<float>>& dye, float* dweight) {
  const int64_t K = rt.k;
  dye.resize(batches.size());
#pragma omp parallel for schedule(dynamic, 1) if (!omp_in_parallel())
  for (size_t i = 0; i < batches.size(); i++) {
    const ExpertBatch& b = batches[i];
    dye[i].assign(size_t(b.nb * D), 0.0f);
    for (int64_t j = 0; j < b.n; j++) {
      const int64_t r = b.rows[size_t(j)], slot = b.slots[size_t(j)];
      const float wk = rt.weight[size_t(r * K + slot)];
      const float* g = dy + r * D;
      const float* ye = b.y.data() + j * D;
      float* d = dye[i].data() + j * D;
      float dot = 0;
      for (int64_t c = 0; c < D; c++) {
        d[c] = wk * g[c];
        dot += g[c] * ye[c];
      }
      dweight[r * K + slot] = dot;  // each (row, slot) belongs to one expert
    }
  }
}

void LocalDispatch::dispatch_backward(const std::vector<ExpertBatch>& batches, const std::vector<std::vector<float>>& dxe,
                                      int64_t D, float* dx) {
  for (size_t i = 0; i < batches.size(); i++) {
    const ExpertBatch& b = batches[i];
    for (int64_t j = 0; j < b.n; j++) {
      float* dst = dx + int64_t(b.rows[size_t(j)]) * D;
      const float* src = dxe[i].data() + j * D;
#pragma omp simd
      for (int64_t d = 0; d < D; d++) dst[d] += src[d];
    }
  }
}

ExpertDispatch& local_dispatch() {
  static LocalDispatch d;
  return d;
}

}  // namespace dseek
