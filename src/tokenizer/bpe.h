// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}): vocab, merges ("a b" strings or ["a", "b"]
// pairs; a merge's rank is its position), unk_token, fuse_unk, byte_fallback, continuing_subword_prefix,
// end_of_word_suffix, ignore_merges. Merging applies the lowest-ranked adjacent pair first, the leftmost
// among equal ranks, until no pair has a merge.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dseek::tok {

// Open-addressing map from a pair of token ids to (rank, merged id).
class MergeTable {
 public:
  struct Entry {
    uint64_t key = kEmpty;
    int32_t rank = 0, id = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t(0);

  void reserve(size_t n);
  void insert(int32_t a, int32_t b, int32_t rank, int32_t id);  // keeps an existing entry (first rank wins)
  const Entry* find(int32_t a, int32_t b) const {
    uint64_t key = uint64_t(uint32_t(a)) << 32 | uint32_t(b);
    for (size_t i = hash(key) & mask_;; i = (i + 1) & mask_) {
      const Entry& e = slots_[i];
      if (e.key == key) return &e;
      if (e.key == kEmpty) return nullptr;
    }
  }
  size_t size() const { return count_; }

 private:
  static size_t hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return size_t(k);
  }
  std::vector<Entry> slots_ = std::vector<Entry>(16);
  size_t mask_ = 15, count_ = 0;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class BpeModel {
 public:
  static std::unique_ptr<BpeModel> from_json(const nlohmann::json& model, const std::string& where);

  // Ids of one pre-tokenized piece, appended to `out`. With `raw_bytes`, `piece` holds raw bytes that stand
  // for their ByteLevel characters (the ByteLevel pre-tokenizer's mapping was deferred to here).
  void encode_piece(std::string_view piece, bool raw_bytes, std::vector<int32_t>& out) const;

  int32_t token_to_id(std::string_view token) const {
    auto it = vocab_.find(token);
    return it == vocab_.end() ? -1 : it->second;
  }
  // Empty string for ids outside the vocab.
  const std::string& id_to_token(int32_t id) const {
    static const std::string empty;
    return id >= 0 && size_t(id) < tokens_.size() ? tokens_[id] : empty;
  }
  size_t vocab_size() const { return vocab_.size(); }
  size_t id_space() const { return tokens_.size(); }  // max id + 1

 private:
  void initial_symbols(std::string_view word, bool raw_bytes, std::vector<int32_t>& ids) const;
  void merge(std::vector<int32_t>& ids) const;
  void merge_long(std::vector<int32_t>& ids) const;

  std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>> vocab_;
  std::vector<std::string> tokens_;
  MergeTable merges_;
  int32_t unk_id_ = -1;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix
  int32_t byte_ids_[256];        // id of each byte's ByteLevel character (-1 if absent)
  int32_t byte_fallback_ids_[256];
  bool plain_bytes_ = false;  // raw bytes can be mapped straight through byte_ids_
};

}  // namespace dseek::tok
