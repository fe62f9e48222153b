// Rotary position embedding: inverse frequencies of the config's scaling (DeepSeek's YaRN; Llama's linear,
// dynamic NTK, YaRN and llama3), a cos/sin table by position (times the scaling's attention factor), and the
// rotation in either layout: interleaved pairs (x[2i], x[2i+1]) for DeepSeek's decoupled RoPE key, or halves
// (x[i], x[i + d/2]) ("rotate_half") for Qwen2 and Llama. Each pair turns by the angle pos * f_i.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace dseek {

// Inverse frequencies [rope_dim / 2]; `seq_len` matters only for dynamic NTK scaling (the longest sequence of
// the current forward pass, as transformers uses it).
std::vector<float> rope_inv_freq(const ModelConfig& c, int64_t seq_len = 0);

class RopeTable {
 public:
  RopeTable() = default;
  explicit RopeTable(const ModelConfig& c);
  int64_t half() const { return half_; }
  RopeLayout layout() const { return layout_; }
  // cos/sin rows for position p (length half()).
  const float* cos(int64_t p) const { return cos_.data() + p * half_; }
  const float* sin(int64_t p) const { return sin_.data() + p * half_; }
  // Before a forward pass whose positions are below `positions`: grows the table, and under dynamic NTK scaling
  // switches to the frequencies of that sequence length.
  void prepare(int64_t positions);
  int64_t size() const { return positions_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  // Factor the cos/sin rows carry (YaRN / LongRoPE attention scaling; 1 otherwise).
  float attention_scaling() const { return scale_; }

 private:
  void fill(int64_t from, int64_t to);

  ModelConfig config_;
  int64_t half_ = 0, positions_ = 0, dynamic_len_ = 0;
  RopeLayout layout_ = RopeLayout::Interleaved;
  float scale_ = 1.0f;
  std::vector<float> inv_freq_, cos_, sin_;
};

// x[rows, ld] holding `heads` rope slices of 2*half floats at x + r*ld + offset + h*stride, in the table's layout.
// inverse=true rotates by -angle (the backward pass of a rotation is its transpose).
void rope_apply(float* x, int64_t rows, int64_t ld, int64_t offset, int64_t heads, int64_t stride,
                const int32_t* positions, const RopeTable& t, bool inverse = false);

}  // namespace dseek
