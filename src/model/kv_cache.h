// KV cache of one sequence, F32, stored transposed: [layer][dim][capacity]. Per layer and token it holds
// kv_cache_dim() floats: for MLA only the normalised latent c_kv (kv_lora_rank) and the rotated shared RoPE key
// k_pe (qk_rope_head_dim); for GQA the rotated keys then the values of every KV head ([k_0 .. k_{n-1} | v_0 ..
// v_{n-1}], head_dim each). Decode scores then take 16 keys per vector, the weighted sum over values is a
// product with a block of rows, and prefill reads it as the transposed input of a matrix product.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace dseek {

class KVCache {
 public:
  KVCache() = default;
  // Layers [first_layer, first_layer + layers) of the model (an MTP module's cache: first_layer num_hidden_layers).
  KVCache(const ModelConfig& c, int64_t layers, int64_t capacity = 256, int64_t first_layer = 0)
      : layers_(layers), first_layer_(first_layer), dim_(c.kv_cache_dim()) {
    reserve(capacity);
  }
  int64_t length() const { return length_; }
  int64_t dim() const { return dim_; }  // ModelConfig::kv_cache_dim()
  int64_t capacity() const { return capacity_; }  // the leading dimension of cols()
  // [dim][capacity] of one layer: element (d, token) at cols(layer)[d * capacity() + token]
  const float* cols(int64_t layer) const { return data_.data() + (layer - first_layer_) * dim_ * capacity_; }
  float at(int64_t layer, int64_t token, int64_t d) const { return cols(layer)[d * capacity_ + token]; }
  // Dimensions [d0, d0 + n) of a token.
  void write(int64_t layer, int64_t token, const float* v, int64_t d0, int64_t n);
  void reserve(int64_t n);
  // Tokens [t0, t0 + n) of every layer out of / into `buf` laid out [layer][dim][n] (the prefix cache's blocks).
  void copy_out(int64_t t0, int64_t n, float* buf) const;
  void copy_in(int64_t t0, int64_t n, const float* buf);
  void set_length(int64_t n) { length_ = n; }  // after appending (or to roll back)
  size_t bytes_per_token() const { return size_t(layers_ * dim_) * sizeof(float); }

 private:
  int64_t layers_ = 0, first_layer_ = 0, dim_ = 0, capacity_ = 0, length_ = 0;
  std::vector<float> data_;
};

}  // namespace dseek
