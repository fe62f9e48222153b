#include "model/rope.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace dseek {

std::vector<float> rope_inv_freq(const ModelConfig& c) {
  const int64_t dim = c.qk_rope_head_dim, half = dim / 2;
  const double base = c.rope_theta;
  std::vector<float> f(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; i++) f[size_t(i)] = float(1.0 / std::pow(base, double(2 * i) / double(dim)));
  if (!c.yarn_active()) return f;
  // YaRN: dimensions rotating fewer than beta_slow times over the original context are interpolated
  // (f / factor), more than beta_fast times kept, with a linear ramp in between.
  const auto& rs = c.rope_scaling;
  const double orig = double(rs.original_max_position_embeddings);
  auto correction_dim = [&](double rotations) {
    return double(dim) * std::log(orig / (rotations * 2 * M_PI)) / (2 * std::log(base));
  };
  double low = std::max(std::floor(correction_dim(rs.beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(rs.beta_slow)), double(dim - 1));
  if (low == high) high += 0.001;
  const float factor = float(rs.factor);
  for (int64_t i = 0; i < half; i++) {
    float ramp = std::clamp(float((double(i) - low) / (high - low)), 0.0f, 1.0f);
    float smooth = 1.0f - ramp;
    float fi = f[size_t(i)];
    f[size_t(i)] = fi / factor * (1.0f - smooth) + fi * smooth;
  }
  return f;
}

RopeTable::RopeTable(const ModelConfig& c)
    : half_(c.qk_rope_head_dim / 2), scale_(float(c.rope_cos_sin_scale())), inv_freq_(rope_inv_freq(c)) {
  ensure(std::min<int64_t>(c.max_position_embeddings, 4096));
}

void RopeTable::ensure(int64_t positions) {
  if (positions <= positions_) return;
  int64_t n = std::max(positions, positions_ * 2);
  cos_.resize(size_t(n * half_));
  sin_.resize(size_t(n * half_));
  for (int64_t p = positions_; p < n; p++)
    for (int64_t i = 0; i < half_; i++) {
      // angle rounded to f32 as in the reference (outer product of f32 positions and frequencies)
      const float angle = float(p) * inv_freq_[size_t(i)];
      cos_[size_t(p * half_ + i)] = float(std::cos(double(angle))) * scale_;
      sin_[size_t(p * half_ + i)] = float(std::sin(double(angle))) * scale_;
    }
  positions_ = n;
}

void rope_apply(float* x, int64_t rows, int64_t ld, int64_t offset, int64_t heads, int64_t stride,
                const int32_t* positions, const RopeTable& t, bool inverse) {
  const int64_t half = t.half();
#pragma omp parallel for schedule(static) if (rows * heads * half > 65536)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t p = positions[r];
    const float* cs = t.cos(p);
    const float* sn = t.sin(p);
    for (int64_t h = 0; h < heads; h++) {
      float* v = x + r * ld + offset + h * stride;
      for (int64_t i = 0; i < half; i++) {
        const float a = v[2 * i], b = v[2 * i + 1];
        const float c = cs[i], s = inverse ? -sn[i] : sn[i];
        v[2 * i] = a * c - b * s;
        v[2 * i + 1] = a * s + b * c;
      }
    }
  }
}

}  // namespace dseek
