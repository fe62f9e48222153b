#include "inference/prefix_cache.h"

#include <algorithm>

#include "core/rng.h"

namespace dseek {

uint64_t PrefixCache::key(uint64_t parent, const int32_t* tokens) const {
  uint64_t h = splitmix64(parent ^ 0x5bd1e995ull);
  for (int64_t i = 0; i < block_; i++) h = splitmix64(h ^ uint64_t(uint32_t(tokens[i])));
  return h;
}

const PrefixCache::Block* PrefixCache::find(uint64_t parent, uint64_t k, const int32_t* tokens) const {
  auto it = blocks_.find(k);
  if (it == blocks_.end() || it->second.parent != parent ||
      !std::equal(it->second.tokens.begin(), it->second.tokens.end(), tokens))
    return nullptr;
  return &it->second;
}

int64_t PrefixCache::restore(const std::vector<int32_t>& tokens, int64_t max_tokens, KVCache& cache) {
  stats_.lookups++;
  if (limit_ <= 0) return 0;
  int64_t n = 0;
  uint64_t parent = 0;
  while (n + block_ <= max_tokens) {
    const uint64_t k = key(parent, tokens.data() + n);
    const Block* b = find(parent, k, tokens.data() + n);
    if (!b) break;
    cache.copy_in(n, block_, b->kv.data());
    lru_.splice(lru_.begin(), lru_, b->lru);  // most recently used
    parent = k;
    n += block_;
  }
  cache.set_length(n);
  stats_.hit_tokens += n;
  return n;
}

void PrefixCache::store(const std::vector<int32_t>& tokens, int64_t n, const KVCache& cache) {
  if (limit_ <= 0) return;
  const int64_t block_bytes = int64_t(cache.bytes_per_token()) * block_;
  if (block_bytes > limit_) return;
  uint64_t parent = 0;
  for (int64_t t = 0; t + block_ <= n; t += block_) {
    const uint64_t k = key(parent, tokens.data() + t);
    if (blocks_.count(k)) {
      const Block* b = find(parent, k, tokens.data() + t);
      if (!b) return;  // a hash collision: keep the stored block, stop here
      lru_.splice(lru_.begin(), lru_, b->lru);
    } else {
      evict_to(limit_ - block_bytes);
      Block b;
      b.tokens.assign(tokens.begin() + t, tokens.begin() + t + block_);
      b.parent = parent;
      b.kv.resize(size_t(block_bytes / int64_t(sizeof(float))));
      cache.copy_out(t, block_, b.kv.data());
      lru_.push_front(k);
      b.lru = lru_.begin();
      blocks_.emplace(k, std::move(b));
      bytes_ += block_bytes;
    }
    parent = k;
  }
}

void PrefixCache::evict_to(int64_t bytes) {
  while (bytes_ > bytes && !lru_.empty()) {
    auto it = blocks_.find(lru_.back());
    bytes_ -= int64_t(it->second.kv.size() * sizeof(float));
    blocks_.erase(it);
    lru_.pop_back();
    stats_.evicted_blocks++;
  }
}

PrefixCacheStats PrefixCache::stats() const {
  PrefixCacheStats s = stats_;
  s.blocks = int64_t(blocks_.size());
  s.bytes = bytes_;
  s.bytes_limit = limit_;
  return s;
}

}  // namespace dseek
