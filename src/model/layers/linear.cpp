#include "model/layers/linear.h"

#include <omp.h>

#include <vector>

#include "model/layers/linear_lowp.h"

namespace dseek {

namespace {

void add_bias(int64_t R, const Linear& w, float* y, int64_t ldy) {
  const float* b = w.bias.f32();
  const int64_t N = w.out();
#pragma omp parallel for schedule(static) if (R * N > 65536 && !omp_in_parallel())
  for (int64_t r = 0; r < R; r++) {
    float* yr = y + r * ldy;
#pragma omp simd
    for (int64_t n = 0; n < N; n++) yr[n] += b[n];
  }
}

}  // namespace

void linear_forward(int64_t R, const float* x, int64_t ldx, const Linear& w, float* y, int64_t ldy, bool accumulate) {
  if (w.recipe && R > 0) lowp_linear_forward(R, x, ldx, w, y, ldy, accumulate);
  else matmul(Matmul{R, x, ldx, MatRef::of(w), y, ldy, accumulate});
  if (w.has_bias()) add_bias(R, w, y, ldy);
}

void linear_forward(const std::vector<LinearJob>& jobs) {
  std::vector<Matmul> ps;
  ps.reserve(jobs.size());
  for (const LinearJob& j : jobs) {
    if (j.w->recipe) linear_forward(j.R, j.x, j.ldx, *j.w, j.y, j.ldy, j.accumulate);
    else ps.push_back(Matmul{j.R, j.x, j.ldx, MatRef::of(*j.w), j.y, j.ldy, j.accumulate});
  }
  matmul(ps);
  for (const LinearJob& j : jobs)
    if (j.w->has_bias() && !j.w->recipe) add_bias(j.R, *j.w, j.y, j.ldy);
}

void linear_backward(int64_t R, const float* dy, int64_t lddy, const float* x, int64_t ldx, const Linear& w,
                     float* dx, int64_t lddx, bool accumulate_dx, Linear& grad, Precision p) {
  if (w.recipe && R > 0) return lowp_linear_backward(R, dy, lddy, x, ldx, w, dx, lddx, accumulate_dx, grad);
  const int64_t out = w.out(), in = w.in();
  if (dx) {
    Matmul m{R, dy, lddy, MatRef::of(w), dx, lddx, accumulate_dx};
    m.w_plain = true;
    matmul(m);
  }
  gemm(true, false, out, in, R, 1.0f, dy, lddy, x, ldx, 1.0f, grad.weight.f32(), in, p);
  if (w.has_bias()) {
    float* db = grad.bias.f32();
    for (int64_t r = 0; r < R; r++) {
      const float* g = dy + r * lddy;
#pragma omp simd
      for (int64_t n = 0; n < out; n++) db[n] += g[n];
    }
  }
}

}  // namespace dseek
