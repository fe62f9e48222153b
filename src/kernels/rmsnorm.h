// RMSNorm: y = x / sqrt(mean(x^2) + eps) * w  (eps inside the square root, as DeepSeek's reference).
#pragma once
#include <cstdint>

namespace dseek {

// rows of length d with leading dimensions ldx/ldy; rstd (optional, [rows]) saves 1/sqrt(mean(x^2)+eps).
void rmsnorm_forward(const float* x, int64_t ldx, const float* w, float eps, int64_t rows, int64_t d, float* y,
                     int64_t ldy, float* rstd = nullptr);
// dx (+)= d/dx, dw += d/dw; with r = rstd, xh = x r:  dx = r (g w - xh mean(g w xh)),  dw = sum_rows g xh.
void rmsnorm_backward(const float* x, int64_t ldx, const float* w, const float* rstd, const float* dy, int64_t lddy,
                      int64_t rows, int64_t d, float* dx, int64_t lddx, float* dw, bool accumulate_dx);

}  // namespace dseek
