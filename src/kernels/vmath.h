// Vectorisable elementwise math for hot loops (use inside `#pragma omp simd` loops).
// exp_approx: x = n ln2 + r (Cody-Waite, |r| <= ln2 / 2), e^r by its degree-7 Taylor polynomial, times 2^n;
// relative error about 2e-7 for x in [-87.3, 88]; 0 below -87.3 (so exp(-inf) = 0), clamped above 88.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace dseek {

inline float exp_approx(float x) {
  const bool underflow = x < -87.3f;
  x = underflow ? -87.3f : (x > 88.0f ? 88.0f : x);
  const float n = std::nearbyint(x * 1.44269504088896341f);  // to nearest even (default rounding mode)
  float r = std::fma(-n, 0.693145751953125f, x);  // ln 2, high part (exact product)
  r = std::fma(-n, 1.428606765330187e-6f, r);     // ln 2, low part
  float p = 1.0f / 5040;
  p = std::fma(p, r, 1.0f / 720);
  p = std::fma(p, r, 1.0f / 120);
  p = std::fma(p, r, 1.0f / 24);
  p = std::fma(p, r, 1.0f / 6);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  const int32_t e = int32_t(n) + 127;
  const float v = p * std::bit_cast<float>(e << 23);
  return underflow ? 0.0f : v;
}

inline float sigmoid_approx(float x) { return 1.0f / (1.0f + exp_approx(-x)); }

// row[0:n] <- softmax(scale * row[0:n]) in place (attention scores of one query over its visible keys).
inline void softmax_scaled(float* row, int64_t n, float scale) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int64_t j = 0; j < n; j++) mx = std::fmax(mx, row[j] *= scale);
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; j++) sum += (row[j] = exp_approx(row[j] - mx));
  const float inv = 1.0f / sum;
#pragma omp simd
  for (int64_t j = 0; j < n; j++) row[j] *= inv;
}

}  // namespace dseek
