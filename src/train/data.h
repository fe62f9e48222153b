// Token shards written by `dseek prepare` and read by the trainer.
// A shard file: magic "DSEEKTOK", u32 version (1), u32 bytes per token (2 or 4), u64 token count, tokens
// (little-endian). Documents are separated by the EOS id. DIR/meta.json describes the split and tokenizer;
// DIR/token_bytes.bin holds the UTF-8 byte length of every token (for bits per byte).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/fileio.h"
#include "core/rng.h"

namespace dseek {

void write_token_shard(const std::string& path, const std::vector<int32_t>& tokens, int64_t vocab_size);

class TokenDataset {
 public:
  // All shards of `split` ("train" or "val") in `dir`.
  static TokenDataset open(const std::string& dir, const std::string& split);
  int64_t size() const { return total_; }
  int64_t vocab_size() const { return vocab_size_; }
  int32_t eos_id() const { return eos_id_; }
  // tokens [start, start + n) of the concatenated shards
  void read(int64_t start, int64_t n, int32_t* out) const;
  // UTF-8 bytes of token id (0 for special tokens); empty table: 1 byte per token.
  int64_t bytes_of(int32_t id) const { return token_bytes_.empty() ? 1 : token_bytes_[size_t(id)]; }
  const std::string& dir() const { return dir_; }

 private:
  struct Shard {
    std::shared_ptr<MappedFile> file;
    const uint8_t* data;
    int64_t count;
    int width;
  };
  std::string dir_;
  std::vector<Shard> shards_;
  std::vector<int64_t> offsets_;  // first token of each shard
  int64_t total_ = 0, vocab_size_ = 0;
  int32_t eos_id_ = 0;
  std::vector<uint8_t> token_bytes_;
};

// Random windows of T+1 tokens from a seeded RNG; its state is the data position for resuming.
class WindowSampler {
 public:
  WindowSampler(const TokenDataset& d, uint64_t seed) : data_(&d), rng_(seed) {}
  void next(int64_t B, int64_t T, std::vector<int32_t>& tokens);  // tokens [B, T+1]
  std::vector<uint64_t> state() const { return {rng_.s[0], rng_.s[1], rng_.s[2], rng_.s[3]}; }
  void set_state(const std::vector<uint64_t>& s);

 private:
  const TokenDataset* data_;
  Rng rng_;
};

}  // namespace dseek
