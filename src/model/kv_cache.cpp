#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

namespace dseek {

void KVCache::reserve(int64_t n) {
  if (n <= capacity_) return;
  const int64_t cap = std::max(n, capacity_ * 2);
  std::vector<float> d(size_t(layers_ * cap * dim_));
  for (int64_t l = 0; l < layers_; l++)
    std::memcpy(d.data() + l * cap * dim_, data_.data() + l * capacity_ * dim_, size_t(length_ * dim_) * sizeof(float));
  data_.swap(d);
  capacity_ = cap;
}

}  // namespace dseek
