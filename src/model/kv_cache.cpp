#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace dseek {

void KVCache::write(int64_t layer, int64_t pos, const float* v) {
  std::memcpy(rows_.data() + (layer * capacity_ + pos) * dim_, v, size_t(dim_) * sizeof(float));
  float* c = cols_.data() + layer * dim_ * capacity_ + pos;
  for (int64_t d = 0; d < dim_; d++) c[d * capacity_] = v[d];
}

void KVCache::reserve(int64_t n) {
  if (n <= capacity_) return;
  const int64_t cap = std::max(n, capacity_ * 2);
  std::vector<float> r(size_t(layers_ * cap * dim_)), c(size_t(layers_ * dim_ * cap));
  for (int64_t l = 0; l < layers_; l++) {
    std::memcpy(r.data() + l * cap * dim_, rows_.data() + l * capacity_ * dim_, size_t(length_ * dim_) * sizeof(float));
    for (int64_t d = 0; d < dim_; d++)
      std::memcpy(c.data() + (l * dim_ + d) * cap, cols_.data() + (l * dim_ + d) * capacity_, size_t(length_) * sizeof(float));
  }
  rows_.swap(r);
  cols_.swap(c);
  capacity_ = cap;
}

}  // namespace dseek
