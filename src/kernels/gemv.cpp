#include "kernels/gemv.h"

#include <vector>

namespace dseek {

void gemv_rows_generic(const GemvJob& j, int64_t n0, int64_t n1) {
  std::vector<float> row(size_t(j.w.cols));
  for (int64_t n = n0; n < n1; n++) {
    j.w.rows_to_f32(n, 1, row.data());
    for (int64_t m = 0; m < j.M; m++) {
      const float* x = j.x + m * j.ldx;
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t k = 0; k < j.w.cols; k++) s += x[k] * row[size_t(k)];
      float* y = j.y + m * j.ldy + n;
      *y = j.accumulate ? *y + s : s;
    }
  }
}

}  // namespace dseek
