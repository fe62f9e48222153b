#include "train/data.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dseek {

namespace {
constexpr char kMagic[8] = {'D', 'S', 'E', 'E', 'K', 'T', 'O', 'K'};
constexpr size_t kHeader = 24;
}  // namespace

void write_token_shard(const std::string& path, const std::vector<int32_t>& tokens, int64_t vocab_size) {
  const uint32_t width = vocab_size <= 65536 ? 2 : 4;
  write_file_atomic(path, [&](FileWriter& w) {
    uint32_t version = 1;
    uint64_t count = tokens.size();
    w.write(kMagic, 8);
    w.write(&version, 4);
    w.write(&width, 4);
    w.write(&count, 8);
    if (width == 4) {
      w.write(tokens.data(), tokens.size() * 4);
    } else {
      std::vector<uint16_t> t16(tokens.begin(), tokens.end());
      w.write(t16.data(), t16.size() * 2);
    }
  });
}

TokenDataset TokenDataset::open(const std::string& dir, const std::string& split) {
  namespace fs = std::filesystem;
  TokenDataset d;
  d.dir_ = dir;
  const std::string meta_path = path_join(dir, "meta.json");
  if (!file_exists(meta_path)) fail("{}: missing (is {} a folder written by 'dseek prepare'?)", meta_path, dir);
  auto meta = nlohmann::json::parse(read_file(meta_path), nullptr, false);
  if (meta.is_discarded() || !meta.is_object()) fail("{}: not valid JSON", meta_path);
  if (!meta.contains("vocab_size") || !meta["vocab_size"].is_number_integer()) fail("{}: missing field 'vocab_size'", meta_path);
  if (!meta.contains("eos_id") || !meta["eos_id"].is_number_integer()) fail("{}: missing field 'eos_id'", meta_path);
  d.vocab_size_ = meta["vocab_size"].get<int64_t>();
  d.eos_id_ = meta["eos_id"].get<int32_t>();
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(split + "-", 0) == 0 && e.path().extension() == ".tok") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) fail("{}: no {}-*.tok shards", dir, split);
  for (const auto& f : files) {
    Shard s;
    s.file = map_file(f);
    if (s.file->size < kHeader || std::memcmp(s.file->data, kMagic, 8) != 0) fail("{}: not a dseek token shard", f);
    uint32_t version, width;
    uint64_t count;
    std::memcpy(&version, s.file->data + 8, 4);
    std::memcpy(&width, s.file->data + 12, 4);
    std::memcpy(&count, s.file->data + 16, 8);
    if (version != 1) fail("{}: unsupported shard version {}", f, version);
    if (width != 2 && width != 4) fail("{}: unsupported token width {}", f, width);
    if (count > (s.file->size - kHeader) / width || kHeader + count * width != s.file->size)
      fail("{}: header says {} tokens but the file holds {} bytes of tokens (truncated?)", f, count, s.file->size - kHeader);
    s.data = s.file->data + kHeader;
    s.count = int64_t(count);
    s.width = int(width);
    // ids must be inside the vocabulary (checked once here, so sampling never yields bad ids)
    for (int64_t i = 0; i < s.count; i++) {
      const uint32_t id = width == 2 ? uint32_t(reinterpret_cast<const uint16_t*>(s.data)[i])
                                     : reinterpret_cast<const uint32_t*>(s.data)[i];
      if (id >= uint32_t(d.vocab_size_)) fail("{}: token {} at index {} is outside the vocabulary ({})", f, id, i, d.vocab_size_);
    }
    d.offsets_.push_back(d.total_);
    d.total_ += s.count;
    d.shards_.push_back(std::move(s));
  }
  const std::string tb = path_join(dir, "token_bytes.bin");
  if (file_exists(tb)) {
    std::string b = read_file(tb);
    if (int64_t(b.size()) != d.vocab_size_) fail("{}: {} entries, expected vocab_size {}", tb, b.size(), d.vocab_size_);
    d.token_bytes_.assign(b.begin(), b.end());
  }
  return d;
}

void TokenDataset::read(int64_t start, int64_t n, int32_t* out) const {
  DSEEK_CHECK(start >= 0 && start + n <= total_, "dataset read [{}, {}) outside [0, {})", start, start + n, total_);
  size_t s = size_t(std::upper_bound(offsets_.begin(), offsets_.end(), start) - offsets_.begin()) - 1;
  int64_t pos = start - offsets_[s];
  for (int64_t i = 0; i < n; i++) {
    while (pos >= shards_[s].count) {
      s++;
      pos = 0;
    }
    const Shard& sh = shards_[s];
    out[i] = sh.width == 2 ? int32_t(reinterpret_cast<const uint16_t*>(sh.data)[pos])
                           : int32_t(reinterpret_cast<const uint32_t*>(sh.data)[pos]);
    pos++;
  }
}

void WindowSampler::next(int64_t B, int64_t T, std::vector<int32_t>& tokens) {
  const int64_t n = data_->size();
  if (n < T + 1) fail("{}: {} tokens, fewer than one window of {}", data_->dir(), n, T + 1);
  tokens.resize(size_t(B * (T + 1)));
  for (int64_t b = 0; b < B; b++) {
    const int64_t start = int64_t(rng_.below(uint64_t(n - T)));
    data_->read(start, T + 1, tokens.data() + b * (T + 1));
  }
}

void WindowSampler::set_state(const std::vector<uint64_t>& s) {
  DSEEK_CHECK(s.size() == 4, "sampler state must have 4 words");
  for (int i = 0; i < 4; i++) rng_.s[i] = s[size_t(i)];
}

}  // namespace dseek
