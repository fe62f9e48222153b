#include "model/layers/embedding.h"

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/error.h"
#include "kernels/matmul.h"

namespace dseek {

void embedding_forward(const Tensor& E, const int32_t* tokens, int64_t R, float* y) {
  const MatRef e = MatRef::of(E);
  const int64_t D = e.cols, V = e.rows;
  for (int64_t r = 0; r < R; r++)
    DSEEK_CHECK(tokens[r] >= 0 && tokens[r] < V, "token id {} is outside the vocabulary [0, {})", tokens[r], V);
#pragma omp parallel for schedule(static) if (R * D > 65536)
  for (int64_t r = 0; r < R; r++) e.rows_to_f32(tokens[r], 1, y + r * D);
}

void embedding_backward(const int32_t* tokens, int64_t R, const float* dy, Tensor& dE) {
  const int64_t D = dE.dim(1);
  std::vector<int64_t> order(static_cast<size_t>(R));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return tokens[a] < tokens[b]; });
  // runs of equal tokens; each run is owned by one thread
  std::vector<int64_t> starts;
  for (int64_t i = 0; i < R; i++)
    if (i == 0 || tokens[order[size_t(i)]] != tokens[order[size_t(i - 1)]]) starts.push_back(i);
  starts.push_back(R);
  float* g = dE.f32();
  const int64_t runs = int64_t(starts.size()) - 1;
#pragma omp parallel for schedule(dynamic, 16) if (R * D > 65536)
  for (int64_t s = 0; s < runs; s++) {
    float* row = g + int64_t(tokens[order[size_t(starts[size_t(s)])]]) * D;
    for (int64_t i = starts[size_t(s)]; i < starts[size_t(s + 1)]; i++) {
      const float* src = dy + order[size_t(i)] * D;
#pragma omp simd
      for (int64_t d = 0; d < D; d++) row[d] += src[d];
    }
  }
}

}  // namespace dseek
