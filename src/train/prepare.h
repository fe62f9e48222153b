// `dseek prepare`: documents from text files (split at blank lines) or JSON Lines ({"text": ...}) are encoded on
// all threads, joined with EOS, split into train/val by document, and written as token shards (data.h).
#pragma once
#include <string>
#include <vector>

namespace dseek {

struct PrepareOptions {
  std::string tokenizer;
  std::vector<std::string> inputs;
  std::string out;
  double val_fraction = 0.05;
  bool whole_files = false;  // one document per text file instead of per paragraph
  bool progress = true;
};

struct PrepareStats {
  int64_t train_tokens = 0, val_tokens = 0, train_docs = 0, val_docs = 0, bytes = 0;
  double seconds = 0;
};

PrepareStats prepare_dataset(const PrepareOptions& o);

}  // namespace dseek
