#include "kernels/rmsnorm.h"

#include <cmath>
#include <vector>

#include "core/threads.h"

namespace dseek {

void rmsnorm_forward(const float* x, int64_t ldx, const float* w, float eps, int64_t rows, int64_t d, float* y,
                     int64_t ldy, float* rstd) {
#pragma omp parallel for schedule(static) if (rows * d > 32768)
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * ldx;
    float* yr = y + r * ldy;
    float ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < d; i++) ss += xr[i] * xr[i];
    const float s = 1.0f / std::sqrt(ss / float(d) + eps);
    if (rstd) rstd[r] = s;
#pragma omp simd
    for (int64_t i = 0; i < d; i++) yr[i] = xr[i] * s * w[i];
  }
}

void rmsnorm_backward(const float* x, int64_t ldx, const float* w, const float* rstd, const float* dy, int64_t lddy,
                      int64_t rows, int64_t d, float* dx, int64_t lddx, float* dw, bool accumulate_dx) {
  const int nt = (rows * d > 32768) ? num_threads() : 1;
  std::vector<float> dw_part(size_t(nt) * size_t(d), 0.0f);
#pragma omp parallel num_threads(nt)
  {
    const int t = thread_index();
    int64_t r0, r1;
    split_range(rows, nt, t, r0, r1);
    float* dwp = dw_part.data() + size_t(t) * size_t(d);
    for (int64_t r = r0; r < r1; r++) {
      const float* xr = x + r * ldx;
      const float* g = dy + r * lddy;
      float* dxr = dx + r * lddx;
      const float s = rstd[r];
      float dot = 0;  // sum g w xh
#pragma omp simd reduction(+ : dot)
      for (int64_t i = 0; i < d; i++) dot += g[i] * w[i] * xr[i] * s;
      const float mean = dot / float(d);
#pragma omp simd
      for (int64_t i = 0; i < d; i++) {
        const float xh = xr[i] * s;
        const float v = s * (g[i] * w[i] - xh * mean);
        dxr[i] = accumulate_dx ? dxr[i] + v : v;
        dwp[i] += g[i] * xh;
      }
    }
  }
  for (int t = 0; t < nt; t++)
    for (int64_t i = 0; i < d; i++) dw[i] += dw_part[size_t(t) * size_t(d) + size_t(i)];
}

}  // namespace dseek
