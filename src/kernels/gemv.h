// Small-M products y[m, n0:n1] = x[m,:] . w[n,:] for m < M <= kGemvMaxRows (decode path).
#pragma once
#include "kernels/gemm.h"

namespace dseek {

void gemv_rows_generic(const GemvJob& job, int64_t n0, int64_t n1);
void gemv_rows_avx512(const GemvJob& job, int64_t n0, int64_t n1);
bool gemv_avx512_supports(const MatRef& w);  // FP8 blocks must be 16-column aligned

}  // namespace dseek
