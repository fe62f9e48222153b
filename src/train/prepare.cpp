#include "train/prepare.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fileio.h"
#include "core/json_util.h"
#include "core/rng.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"

namespace dseek {

using json = nlohmann::json;

namespace {

std::vector<std::string> read_documents(const std::string& path, bool whole_files) {
  std::vector<std::string> docs;
  const bool jsonl = path.size() > 6 && (path.substr(path.size() - 6) == ".jsonl" || path.substr(path.size() - 5) == ".json");
  if (jsonl) {
    for_each_json_line(path, [&](const json& j, size_t line_no) {
      if (!j.contains("text") || !j["text"].is_string()) fail("{}:{}: no string field 'text'", path, line_no);
      docs.push_back(j["text"].get<std::string>());
    });
    return docs;
  }
  const std::string text = read_file(path);
  if (whole_files) return {text};
  // paragraphs: split at blank lines, keep the text of each paragraph with its own newlines
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\n\n", pos);
    if (end == std::string::npos) end = text.size();
    std::string doc = text.substr(pos, end - pos);
    if (doc.find_first_not_of(" \t\r\n") != std::string::npos) docs.push_back(doc + "\n");
    pos = end;
    while (pos < text.size() && text[pos] == '\n') pos++;
  }
  return docs;
}

void progress_bar(double frac, double mbps) {
  const int width = 30, filled = int(frac * width + 0.5);
  std::fprintf(stderr, "\rtokenizing [%s%s] %3.0f%% %.1f MB/s", std::string(size_t(filled), '#').c_str(),
               std::string(size_t(width - filled), '.').c_str(), frac * 100, mbps);
  std::fflush(stderr);
}

}  // namespace

PrepareStats prepare_dataset(const PrepareOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  if (o.inputs.empty()) fail("--input: no files given");
  if (!(o.val_fraction >= 0 && o.val_fraction < 1)) fail("--val-fraction must be in [0, 1), got {}", o.val_fraction);
  Tokenizer tok = Tokenizer::load(o.tokenizer);
  const int32_t eos = tok.eos_id();
  if (eos < 0) fail("{}: the tokenizer has no EOS token to separate documents", o.tokenizer);
  std::vector<std::string> docs;
  for (const auto& f : o.inputs) {
    if (!file_exists(f)) fail("--input: {}: no such file", f);
    auto d = read_documents(f, o.whole_files);
    docs.insert(docs.end(), std::make_move_iterator(d.begin()), std::make_move_iterator(d.end()));
  }
  if (docs.empty()) fail("--input: no documents found");
  PrepareStats st;
  for (const auto& d : docs) st.bytes += int64_t(d.size());
  make_dirs(o.out);

  std::vector<int32_t> train, val;
  const size_t chunk = 2048;
  int64_t done_bytes = 0;
  for (size_t i = 0; i < docs.size(); i += chunk) {
    std::vector<std::string> part(docs.begin() + i, docs.begin() + std::min(docs.size(), i + chunk));
    auto ids = tok.encode_batch(part, false);
    for (size_t j = 0; j < ids.size(); j++) {
      const size_t doc = i + j;
      const bool is_val = o.val_fraction > 0 && uniform_at(0x5eed, 17, doc) < o.val_fraction;
      auto& dst = is_val ? val : train;
      dst.insert(dst.end(), ids[j].begin(), ids[j].end());
      dst.push_back(eos);
      (is_val ? st.val_docs : st.train_docs)++;
      done_bytes += int64_t(part[j].size());
    }
    if (o.progress)
      progress_bar(double(done_bytes) / double(st.bytes),
                   double(done_bytes) / 1e6 / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  if (o.progress) std::fprintf(stderr, "\n");
  if (train.empty()) fail("--val-fraction {} left no training documents", o.val_fraction);
  const int64_t vocab = int64_t(tok.vocab_size());
  constexpr size_t kShard = 100'000'000;
  auto write_split = [&](const std::vector<int32_t>& tokens, const std::string& split) {
    for (size_t s = 0, i = 0; i < tokens.size() || s == 0; i += kShard, s++) {
      std::vector<int32_t> part(tokens.begin() + i, tokens.begin() + std::min(tokens.size(), i + kShard));
      write_token_shard(path_join(o.out, fmt::format("{}-{:05d}.tok", split, s)), part, vocab);
      if (tokens.empty()) break;
    }
  };
  write_split(train, "train");
  if (!val.empty()) write_split(val, "val");
  // UTF-8 bytes per token, for bits per byte
  std::string tb(static_cast<size_t>(vocab), '\0');
  for (int32_t id = 0; id < vocab; id++) {
    if (tok.is_special(id)) continue;
    std::string s = tok.decode({id});
    if (s.find("\xEF\xBF\xBD") != std::string::npos) {  // a partial UTF-8 sequence: count its byte symbols
      const std::string t = tok.id_to_token(id);
      size_t cps = 0;
      for (unsigned char ch : t) cps += (ch & 0xC0) != 0x80;
      s.assign(cps, 'x');
    }
    tb[size_t(id)] = char(std::min<size_t>(s.size(), 255));
  }
  write_file_atomic(path_join(o.out, "token_bytes.bin"), tb);
  Tokenizer::copy_files(o.tokenizer, o.out);
  st.train_tokens = int64_t(train.size());
  st.val_tokens = int64_t(val.size());
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json meta{{"vocab_size", vocab},          {"eos_id", eos},          {"bos_id", tok.bos_id()},
            {"train_tokens", st.train_tokens}, {"val_tokens", st.val_tokens}, {"train_docs", st.train_docs},
            {"val_docs", st.val_docs},      {"bytes", st.bytes},      {"inputs", o.inputs},
            {"val_fraction", o.val_fraction}};
  write_file_atomic(path_join(o.out, "meta.json"), meta.dump(2) + "\n");
  return st;
}

}  // namespace dseek
