// Decoupled RoPE with YaRN: inverse frequencies (with the YaRN ramp between beta_fast and beta_slow
// rotations), and a cos/sin table by position. Pairs are interleaved: (x[2i], x[2i+1]) rotate by pos * f_i.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace dseek {

std::vector<float> rope_inv_freq(const ModelConfig& c);

class RopeTable {
 public:
  RopeTable() = default;
  explicit RopeTable(const ModelConfig& c);
  int64_t half() const { return half_; }
  // cos/sin rows for position p (length half()); the table grows on demand.
  const float* cos(int64_t p) const { return cos_.data() + p * half_; }
  const float* sin(int64_t p) const { return sin_.data() + p * half_; }
  void ensure(int64_t positions);
  int64_t size() const { return positions_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }

 private:
  int64_t half_ = 0, positions_ = 0;
  float scale_ = 1.0f;
  std::vector<float> inv_freq_, cos_, sin_;
};

// x[rows, ld] holding `heads` rope slices of 2*half floats at x + r*ld + offset + h*stride.
// inverse=true rotates by -angle (the backward pass of a rotation is its transpose).
void rope_apply(float* x, int64_t rows, int64_t ld, int64_t offset, int64_t heads, int64_t stride,
                const int32_t* positions, const RopeTable& t, bool inverse = false);

}  // namespace dseek
