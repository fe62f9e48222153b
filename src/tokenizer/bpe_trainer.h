// Byte-level BPE training with DeepSeek-V3's pre-tokenizer. Produces a tokenizer.json that Hugging Face
// tokenizers loads and encodes identically, and a tokenizer_config.json with DeepSeek-V3's chat template
// (BOS added, the chat format's special tokens reserved inside the vocabulary size).
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dseek {

struct BpeTrainerOptions {
  size_t vocab_size = 32000;  // everything included: special tokens, the 256 byte tokens, merges
  int64_t min_frequency = 2;  // a pair must occur this often to be merged
  // Progress messages (may be empty).
  std::function<void(const std::string&)> progress;
};

struct TrainedTokenizer {
  nlohmann::json tokenizer;         // tokenizer.json
  nlohmann::json tokenizer_config;  // tokenizer_config.json
  size_t merges = 0;
};

// The added tokens a DeepSeek-V3-format vocabulary reserves first (ids 0, 1, ...): BOS, EOS, pad, the chat
// roles, the tool-call markers and the reasoning tags.
const std::vector<std::pair<std::string, bool>>& deepseek_chat_special_tokens();  // {content, special}

// Trains on the concatenated `texts` (each any size; invalid UTF-8 is replaced by U+FFFD).
TrainedTokenizer train_bpe(const std::vector<std::string>& texts, const BpeTrainerOptions& options);

// Writes tokenizer.json and tokenizer_config.json into `dir` (created if needed).
void save_trained_tokenizer(const TrainedTokenizer& t, const std::string& dir);

}  // namespace dseek
