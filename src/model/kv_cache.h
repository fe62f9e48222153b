// MLA KV cache of one sequence: per layer and token only the normalised latent c_kv (kv_lora_rank) and the
// rotated shared RoPE key k_pe (qk_rope_head_dim), F32. Rows [token][dim] feed prefill and the attention's
// weighted sum; a transposed copy [dim][token] lets decode compute scores for 16 keys per vector.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace dseek {

class KVCache {
 public:
  KVCache() = default;
  KVCache(const ModelConfig& c, int64_t layers, int64_t capacity = 256)
      : layers_(layers), dim_(c.kv_cache_dim()), latent_(c.kv_lora_rank) {
    reserve(capacity);
  }
  int64_t length() const { return length_; }
  int64_t dim() const { return dim_; }          // kv_lora_rank + qk_rope_head_dim
  int64_t latent_dim() const { return latent_; }
  int64_t capacity() const { return capacity_; }
  const float* row(int64_t layer, int64_t pos) const { return rows_.data() + (layer * capacity_ + pos) * dim_; }
  // [dim][capacity] for one layer: element (d, pos) at cols(layer)[d * capacity() + pos]
  const float* cols(int64_t layer) const { return cols_.data() + layer * dim_ * capacity_; }
  void write(int64_t layer, int64_t pos, const float* v);  // both layouts
  void reserve(int64_t n);
  void set_length(int64_t n) { length_ = n; }  // after appending (or to roll back)
  // bytes held per token (latent rows and their transposed copy)
  size_t bytes_per_token() const { return size_t(2 * layers_ * dim_) * sizeof(float); }

 private:
  int64_t layers_ = 0, dim_ = 0, latent_ = 0, capacity_ = 0, length_ = 0;
  std::vector<float> rows_, cols_;
};

}  // namespace dseek
