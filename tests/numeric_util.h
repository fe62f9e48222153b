// Numeric helpers shared by the tests: random vectors, dot products, largest differences and the
// finite-difference gradient check.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace dseek::test {

inline std::vector<float> randn(size_t n, uint64_t seed, float scale = 1.0f) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; i++) v[i] = float(normal_at(seed, 0, i)) * scale;
  return v;
}

// E4M3 (OCP FP8): 1 sign, 4 exponent bits (bias 7), 3 mantissa bits; subnormals at exponent 0 (0x7f, 0xff: NaN).
inline double e4m3(uint8_t b) {
  const int e = (b >> 3) & 15, m = b & 7;
  const double v = e == 0 ? m / 8.0 * std::ldexp(1.0, -6) : (1 + m / 8.0) * std::ldexp(1.0, e - 7);
  return b & 0x80 ? -v : v;
}

inline double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); i++) s += double(a[i]) * double(b[i]);
  return s;
}

inline float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; i++) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// Compares the analytic d loss / d v[i] with central differences (loss(v + eps) - loss(v - eps)) / 2 eps on
// `samples` random coordinates of v, within atol + rtol * max(|fd|, 5% of the largest analytic gradient).
inline void check_grad(std::vector<float>& v, const std::vector<float>& analytic, const std::function<double()>& loss,
                       const std::string& what, float eps = 1e-3f, double rtol = 2e-2, double atol = 2e-4,
                       int samples = 24, uint64_t seed = 7) {
  ASSERT_EQ(v.size(), analytic.size()) << what;
  Rng r(seed);
  double max_g = 0;
  for (float g : analytic) max_g = std::max(max_g, double(std::fabs(g)));
  ASSERT_GT(max_g, 0.0) << what << ": gradient is identically zero";
  for (int s = 0; s < samples; s++) {
    const size_t i = size_t(r.below(v.size()));
    const float keep = v[i];
    v[i] = keep + eps;
    const double lp = loss();
    v[i] = keep - eps;
    const double lm = loss();
    v[i] = keep;
    const double fd = (lp - lm) / (2.0 * double(eps));
    EXPECT_NEAR(analytic[i], fd, atol + rtol * std::max(std::fabs(fd), 0.05 * max_g)) << what << " [" << i << "]";
  }
}

// check_grad on a parameter tensor (F32, perturbed in place through `loss`, restored afterwards) against its
// gradient tensor. Returns false, checking nothing, when the gradient is all zero (an expert no token chose).
inline bool check_tensor_grad(Tensor& t, const Tensor& grad, const std::function<double()>& loss, const std::string& what,
                              float eps, double rtol, double atol, int samples, uint64_t seed) {
  std::vector<float> v(t.f32(), t.f32() + t.numel());
  const std::vector<float> g(grad.f32(), grad.f32() + grad.numel());
  if (std::all_of(g.begin(), g.end(), [](float x) { return x == 0.0f; })) return false;
  auto l = [&] {
    std::copy(v.begin(), v.end(), t.f32());
    return loss();
  };
  check_grad(v, g, l, what, eps, rtol, atol, samples, seed);
  std::copy(v.begin(), v.end(), t.f32());
  return true;
}

}  // namespace dseek::test
