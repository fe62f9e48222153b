#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace dseek {

void KVCache::write(int64_t layer, int64_t token, const float* v, int64_t d0, int64_t n) {
  float* c = data_.data() + ((layer - first_layer_) * dim_ + d0) * capacity_ + token;
  for (int64_t d = 0; d < n; d++) c[d * capacity_] = v[d];
}

void KVCache::copy_out(int64_t t0, int64_t n, float* buf) const {
  for (int64_t l = 0; l < layers_; l++)
    for (int64_t d = 0; d < dim_; d++)
      std::memcpy(buf + (l * dim_ + d) * n, data_.data() + (l * dim_ + d) * capacity_ + t0, size_t(n) * sizeof(float));
}

void KVCache::copy_in(int64_t t0, int64_t n, const float* buf) {
  DSEEK_CHECK(t0 + n <= capacity_, "KVCache::copy_in: tokens [{}, {}) beyond the capacity {}", t0, t0 + n, capacity_);
  for (int64_t l = 0; l < layers_; l++)
    for (int64_t d = 0; d < dim_; d++)
      std::memcpy(data_.data() + (l * dim_ + d) * capacity_ + t0, buf + (l * dim_ + d) * n, size_t(n) * sizeof(float));
}

void KVCache::reserve(int64_t n) {
  if (n <= capacity_) return;
  // Rows of the transposed cache are read together (one 16-key strip per dimension): a row stride that is an odd
  // multiple of 64 bytes spreads them over every cache set (a power-of-two stride maps them all to one set).
  int64_t cap = (std::max(n, capacity_ * 2) + 15) / 16 * 16;
  if ((cap / 16) % 2 == 0) cap += 16;
  std::vector<float> c(size_t(layers_ * dim_ * cap));
  for (int64_t l = 0; l < layers_ && length_ > 0; l++)  // (an empty cache has no rows to copy, nor a buffer)
    for (int64_t d = 0; d < dim_; d++)
      std::memcpy(c.data() + (l * dim_ + d) * cap, data_.data() + (l * dim_ + d) * capacity_, size_t(length_) * sizeof(float));
  data_.swap(c);
  capacity_ = cap;
}

}  // namespace dseek
