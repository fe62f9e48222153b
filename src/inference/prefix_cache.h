// Prefix cache: the latent KV of earlier prompts, kept in blocks of `block` tokens and reused by later requests
// that start with the same tokens (a shared system prompt, a chat history, the n choices of one request).
//
// Block hashing as in vLLM: block i of a sequence is keyed by a hash of all tokens up to its end (the chain
// h_i = H(h_{i-1}, tokens of block i)), and stores its own tokens to rule out collisions. A lookup walks the
// chain from the first block and stops at the first block that is missing. Blocks are evicted least recently
// used when the store is over its byte budget; evicting a block in the middle of a chain leaves the later ones
// unreachable until they age out too.
//
// A hit is copied into the request's own cache (one memcpy per layer and dimension row): the attention kernels
// read one contiguous cache per sequence, so blocks are not shared in place.
#pragma once
#include <cstdint>
#include <list>
#include <unordered_map>
#include <vector>

#include "model/kv_cache.h"

namespace dseek {

struct PrefixCacheStats {
  int64_t blocks = 0, bytes = 0, bytes_limit = 0;
  int64_t lookups = 0, hit_tokens = 0, evicted_blocks = 0;
};

class PrefixCache {
 public:
  // block: tokens per block; bytes_limit 0 disables the cache.
  PrefixCache(int64_t block, int64_t bytes_limit) : block_(block), limit_(bytes_limit) {}
  // Copies the longest stored prefix of tokens[0, max_tokens) (whole blocks) into `cache` (empty, with room for
  // them) and sets its length; returns the number of tokens restored.
  int64_t restore(const std::vector<int32_t>& tokens, int64_t max_tokens, KVCache& cache);
  // Stores the whole blocks of tokens[0, n) from `cache` (which holds at least n tokens) that are not stored yet.
  void store(const std::vector<int32_t>& tokens, int64_t n, const KVCache& cache);
  PrefixCacheStats stats() const;
  int64_t block() const { return block_; }

 private:
  struct Block {
    std::vector<int32_t> tokens;  // [block] its own tokens (collision check)
    uint64_t parent = 0;          // the previous block's key (collision check)
    std::vector<float> kv;        // [layer][dim][block]
    std::list<uint64_t>::iterator lru;
  };
  uint64_t key(uint64_t parent, const int32_t* tokens) const;
  const Block* find(uint64_t parent, uint64_t k, const int32_t* tokens) const;
  void evict_to(int64_t bytes);

  int64_t block_, limit_, bytes_ = 0;
  std::unordered_map<uint64_t, Block> blocks_;
  std::list<uint64_t> lru_;  // front: most recently used
  PrefixCacheStats stats_;
};

}  // namespace dseek
