#include "kernels/swiglu.h"

#include <cmath>

#include "kernels/vmath.h"

namespace dseek {

void swiglu_forward(const float* g, const float* u, float* h, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) h[i] = g[i] * sigmoid_approx(g[i]) * u[i];
}

void swiglu_backward(const float* g, const float* u, const float* dh, float* dg, float* du, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; i++) {
    const float s = sigmoid_approx(g[i]);
    const float silu = g[i] * s;
    du[i] = dh[i] * silu;
    dg[i] = dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
  }
}

}  // namespace dseek
