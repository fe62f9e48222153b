#include "model/rope.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace dseek {

namespace {

// 1 / theta^(2i/d)
std::vector<double> plain_inv_freq(double theta, int64_t dim) {
  std::vector<double> f(size_t(dim / 2));
  for (int64_t i = 0; i < dim / 2; i++) f[size_t(i)] = 1.0 / std::pow(theta, double(2 * i) / double(dim));
  return f;
}

// YaRN's blend: dimensions that rotate fewer than beta_slow times over the original context are interpolated
// (f / factor), more than beta_fast times kept, with a linear ramp between floor/ceil of the correction dims.
void yarn_blend(std::vector<double>& f, int64_t dim, double theta, double orig, double factor, double beta_fast,
                double beta_slow) {
  auto correction_dim = [&](double rotations) {
    return double(dim) * std::log(orig / (rotations * 2 * M_PI)) / (2 * std::log(theta));
  };
  double low = std::max(std::floor(correction_dim(beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(beta_slow)), double(dim - 1));
  if (low == high) high += 0.001;
  for (size_t i = 0; i < f.size(); i++) {
    const double ramp = std::clamp((double(i) - low) / (high - low), 0.0, 1.0);
    f[i] = f[i] / factor * ramp + f[i] * (1.0 - ramp);
  }
}

}  // namespace

std::vector<float> rope_inv_freq(const ModelConfig& c, int64_t seq_len) {
  const int64_t dim = c.rope_dim();
  const RopeScaling& s = c.rope_scaling;
  double theta = c.rope_theta;
  if (s.type == RopeScaling::Type::Dynamic && seq_len > c.max_position_embeddings) {
    // dynamic NTK: the base grows with the sequence beyond max_position_embeddings
    const double L = double(seq_len), M = double(c.max_position_embeddings);
    theta *= std::pow(s.factor * L / M - (s.factor - 1.0), double(dim) / double(dim - 2));
  }
  std::vector<double> f = plain_inv_freq(theta, dim);
  switch (s.type) {
    case RopeScaling::Type::None:
    case RopeScaling::Type::Dynamic:
      break;
    case RopeScaling::Type::Linear:
      for (double& v : f) v /= s.factor;
      break;
    case RopeScaling::Type::Yarn:
      if (c.is_deepseek()) {
        if (c.yarn_active())
          yarn_blend(f, dim, theta, double(s.original_max_position_embeddings), s.factor, s.beta_fast, s.beta_slow);
      } else {  // transformers' Llama YaRN: over max_position_embeddings, always applied
        yarn_blend(f, dim, theta, double(c.max_position_embeddings), s.factor, s.beta_fast, s.beta_slow);
      }
      break;
    case RopeScaling::Type::Longrope: {
      const std::vector<double>& ext = s.longrope_long ? s.long_factor : s.short_factor;
      for (size_t i = 0; i < f.size(); i++) f[i] /= ext[i];
      break;
    }
    case RopeScaling::Type::Llama3: {
      // wavelengths above original / low_freq_factor are divided by factor, below original / high_freq_factor
      // kept, and smoothly interpolated between.
      const double orig = double(s.original_max_position_embeddings);
      const double low_wavelen = orig / s.low_freq_factor, high_wavelen = orig / s.high_freq_factor;
      for (double& v : f) {
        const double wavelen = 2 * M_PI / v;
        if (wavelen > low_wavelen) {
          v /= s.factor;
        } else if (wavelen >= high_wavelen) {
          const double smooth = (orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
          v = (1 - smooth) * v / s.factor + smooth * v;
        }
      }
      break;
    }
  }
  return std::vector<float>(f.begin(), f.end());
}

RopeTable::RopeTable(const ModelConfig& c)
    : config_(c), half_(c.rope_dim() / 2), layout_(c.rope_layout()), scale_(float(c.rope_cos_sin_scale())),
      inv_freq_(rope_inv_freq(c)) {
  config_.raw = nullptr;
  prepare(std::min<int64_t>(c.max_position_embeddings, 4096));
}

void RopeTable::fill(int64_t from, int64_t to) {
  for (int64_t p = from; p < to; p++)
    for (int64_t i = 0; i < half_; i++) {
      // angle rounded to f32 as in the references (outer product of f32 positions and frequencies)
      const float angle = float(p) * inv_freq_[size_t(i)];
      cos_[size_t(p * half_ + i)] = float(std::cos(double(angle))) * scale_;
      sin_[size_t(p * half_ + i)] = float(std::sin(double(angle))) * scale_;
    }
}

void RopeTable::prepare(int64_t positions) {
  if (config_.rope_scaling.type == RopeScaling::Type::Dynamic) {
    // transformers recomputes the frequencies for the longest sequence of the call beyond the trained context
    const int64_t len = positions > config_.max_position_embeddings ? positions : 0;
    if (len != dynamic_len_) {
      dynamic_len_ = len;
      inv_freq_ = rope_inv_freq(config_, len);
      fill(0, positions_);
    }
  }
  if (positions <= positions_) return;
  const int64_t n = std::max(positions, positions_ * 2);
  cos_.resize(size_t(n * half_));
  sin_.resize(size_t(n * half_));
  fill(positions_, n);
  positions_ = n;
}

void rope_apply(float* x, int64_t rows, int64_t ld, int64_t offset, int64_t heads, int64_t stride,
                const int32_t* positions, const RopeTable& t, bool inverse) {
  const int64_t half = t.half();
  // interleaved: pair i is (2i, 2i+1); half: pair i is (i, i + half)
  const int64_t step = t.layout() == RopeLayout::Interleaved ? 2 : 1, other = t.layout() == RopeLayout::Interleaved ? 1 : half;
#pragma omp parallel for schedule(static) if (rows * heads * half > 65536)
  for (int64_t r = 0; r < rows; r++) {
    const int64_t p = positions[r];
    const float* cs = t.cos(p);
    const float* sn = t.sin(p);
    for (int64_t h = 0; h < heads; h++) {
      float* v = x + r * ld + offset + h * stride;
      for (int64_t i = 0; i < half; i++) {
        float* a = v + i * step;
        float* b = a + other;
        const float c = cs[i], s = inverse ? -sn[i] : sn[i];
        const float av = *a, bv = *b;
        *a = av * c - bv * s;
        *b = av * s + bv * c;
      }
    }
  }
}

}  // namespace dseek
