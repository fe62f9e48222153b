// GEMV kernels behind matmul(): y[m, n0:n1] (+)= x[m,:] . w[n,:] for m < M <= kGemvMaxRows (decode path).
// Internal to src/kernels; model code calls matmul().
#pragma once
#include "kernels/matmul.h"

namespace dseek {

struct GemvJob {
  int64_t M;
  const float* x;
  int64_t ldx;
  MatRef w;  // [N, K], y = x w^T
  float* y;
  int64_t ldy;
  bool accumulate = false;
};

void gemv_rows_generic(const GemvJob& job, int64_t n0, int64_t n1);
void gemv_rows_avx512(const GemvJob& job, int64_t n0, int64_t n1);
bool gemv_avx512_supports(const MatRef& w);  // FP8 blocks must be 16-column aligned

}  // namespace dseek
