#include "tokenizer/bpe_trainer.h"

#include <algorithm>
#include <filesystem>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/fileio.h"
#include "core/threads.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/deepseek_splitter.h"
#include "tokenizer/unicode.h"

namespace dseek {

using nlohmann::json;

const std::vector<std::pair<std::string, bool>>& deepseek_chat_special_tokens() {
  static const std::vector<std::pair<std::string, bool>> tokens = {
      {"<｜begin▁of▁sentence｜>", true}, {"<｜end▁of▁sentence｜>", true}, {"<｜▁pad▁｜>", true},
      {"<｜User｜>", false},             {"<｜Assistant｜>", false},      {"<｜tool▁calls▁begin｜>", false},
      {"<｜tool▁calls▁end｜>", false},   {"<｜tool▁call▁begin｜>", false}, {"<｜tool▁call▁end｜>", false},
      {"<｜tool▁outputs▁begin｜>", false}, {"<｜tool▁outputs▁end｜>", false}, {"<｜tool▁output▁begin｜>", false},
      {"<｜tool▁output▁end｜>", false},  {"<｜tool▁sep｜>", false},       {"<think>", false},
      {"</think>", false}};
  return tokens;
}

namespace {
using WordCounts = std::unordered_map<std::string, int64_t>;

// Cut points where no pre-tokenizer piece can straddle: after '\n' and before a non-whitespace character.
std::vector<std::string_view> chunks_of(std::string_view text, size_t target) {
  std::vector<std::string_view> out;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = std::min(text.size(), begin + target);
    while (end < text.size() && !(text[end - 1] == '\n' && text[end] != '\n' && text[end] != '\r' &&
                                  text[end] != ' ' && text[end] != '\t'))
      ++end;
    out.push_back(text.substr(begin, end - begin));
    begin = end;
  }
  return out;
}

WordCounts count_words(const std::vector<std::string>& texts) {
  std::vector<std::string_view> chunks;
  for (const std::string& t : texts)
    for (std::string_view c : chunks_of(t, 1 << 20)) chunks.push_back(c);
  int threads = num_threads();
  std::vector<WordCounts> local(threads);
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t i = 0; i < int64_t(chunks.size()); ++i) {
    WordCounts& counts = local[thread_index()];
    std::vector<std::pair<uint32_t, uint32_t>> spans;
    tok::deepseek_v3_split(chunks[i], spans);
    for (auto [b, e] : spans) ++counts[std::string(chunks[i].substr(b, e - b))];
  }
  WordCounts all = std::move(local[0]);
  for (int t = 1; t < threads; ++t)
    for (auto& [w, c] : local[t]) all[w] += c;
  return all;
}

uint64_t pair_key(int32_t a, int32_t b) { return uint64_t(uint32_t(a)) << 32 | uint32_t(b); }
}  // namespace

TrainedTokenizer train_bpe(const std::vector<std::string>& raw_texts, const BpeTrainerOptions& opt) {
  const auto& specials = deepseek_chat_special_tokens();
  size_t base = specials.size() + 256;
  if (opt.vocab_size < base)
    fail("--vocab-size {} is too small: the {} special tokens and 256 byte tokens need {}", opt.vocab_size,
         specials.size(), base);
  auto say = [&](const std::string& s) {
    if (opt.progress) opt.progress(s);
  };

  std::vector<std::string> texts;
  size_t total = 0;
  for (const std::string& t : raw_texts) {
    texts.push_back(unicode::find_invalid_utf8(t) == std::string::npos ? t : unicode::sanitize_utf8(t));
    total += t.size();
  }
  WordCounts counts = count_words(texts);
  say(fmt::format("{:.1f} MB of text, {} distinct pieces", double(total) / 1e6, counts.size()));

  // Vocabulary: special tokens, then the 256 byte characters in code point order, then merges.
  std::vector<std::string> vocab;
  for (auto& [content, special] : specials) vocab.push_back(content);
  std::vector<std::pair<char32_t, int>> alphabet;
  for (int b = 0; b < 256; ++b) alphabet.emplace_back(tok::kByteLevel.to_char[b], b);
  std::sort(alphabet.begin(), alphabet.end());
  int32_t byte_id[256];
  for (auto [cp, b] : alphabet) {
    byte_id[b] = int32_t(vocab.size());
    std::string s;
    unicode::append_utf8(s, cp);
    vocab.push_back(s);
  }

  // Words as symbol sequences, with the words each pair occurs in.
  struct Word {
    std::vector<int32_t> sym;
    int64_t count;
  };
  std::vector<Word> words;
  words.reserve(counts.size());
  for (auto& [w, c] : counts) {
    Word word{{}, c};
    for (unsigned char ch : w) word.sym.push_back(byte_id[ch]);
    words.push_back(std::move(word));
  }
  counts.clear();
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::unordered_set<int32_t>> pair_words;
  for (int32_t wi = 0; wi < int32_t(words.size()); ++wi) {
    const Word& w = words[wi];
    for (size_t i = 0; i + 1 < w.sym.size(); ++i) {
      uint64_t k = pair_key(w.sym[i], w.sym[i + 1]);
      pair_count[k] += w.count;
      pair_words[k].insert(wi);
    }
  }
  // Max-heap by count, then by smaller pair; entries are re-checked against pair_count when popped.
  using Entry = std::pair<int64_t, uint64_t>;
  auto cmp = [](const Entry& a, const Entry& b) { return a.first != b.first ? a.first < b.first : a.second > b.second; };
  std::priority_queue<Entry, std::vector<Entry>, decltype(cmp)> heap(cmp);
  for (auto& [k, c] : pair_count) heap.push({c, k});

  std::vector<std::pair<int32_t, int32_t>> merges;
  while (vocab.size() < opt.vocab_size && !heap.empty()) {
    auto [count, key] = heap.top();
    heap.pop();
    auto it = pair_count.find(key);
    int64_t current = it == pair_count.end() ? 0 : it->second;
    if (current != count) {
      if (current > 0) heap.push({current, key});
      continue;
    }
    if (count < opt.min_frequency) break;
    int32_t a = int32_t(key >> 32), b = int32_t(uint32_t(key));
    int32_t merged = int32_t(vocab.size());
    vocab.push_back(vocab[a] + vocab[b]);
    merges.emplace_back(a, b);

    std::vector<int32_t> affected(pair_words[key].begin(), pair_words[key].end());
    std::sort(affected.begin(), affected.end());
    std::unordered_map<uint64_t, int64_t> delta;
    for (int32_t wi : affected) {
      Word& w = words[wi];
      for (size_t i = 0; i + 1 < w.sym.size(); ++i) delta[pair_key(w.sym[i], w.sym[i + 1])] -= w.count;
      std::vector<int32_t> next;
      next.reserve(w.sym.size());
      for (size_t i = 0; i < w.sym.size(); ++i) {
        if (i + 1 < w.sym.size() && w.sym[i] == a && w.sym[i + 1] == b) {
          next.push_back(merged);
          ++i;
        } else {
          next.push_back(w.sym[i]);
        }
      }
      w.sym.swap(next);
      for (size_t i = 0; i + 1 < w.sym.size(); ++i) {
        uint64_t k = pair_key(w.sym[i], w.sym[i + 1]);
        delta[k] += w.count;
        pair_words[k].insert(wi);
      }
    }
    for (auto& [k, d] : delta) {
      if (d == 0) continue;
      int64_t& c = pair_count[k];
      c += d;
      if (d > 0) heap.push({c, k});
      if (c <= 0) {
        pair_count.erase(k);
        pair_words.erase(k);
      }
    }
    pair_count.erase(key);
    pair_words.erase(key);
    if (merges.size() % 1000 == 0) say(fmt::format("{} merges, vocabulary {}", merges.size(), vocab.size()));
  }

  TrainedTokenizer out;
  out.merges = merges.size();
  json added = json::array();
  for (size_t i = 0; i < specials.size(); ++i)
    added.push_back({{"id", i}, {"content", specials[i].first}, {"single_word", false}, {"lstrip", false},
                     {"rstrip", false}, {"normalized", false}, {"special", specials[i].second}});
  json vocab_json = json::object();
  for (size_t i = 0; i < vocab.size(); ++i) vocab_json[vocab[i]] = i;
  json merges_json = json::array();
  for (auto [a, b] : merges) merges_json.push_back(vocab[a] + " " + vocab[b]);
  out.tokenizer = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", {{"type", "Sequence"}, {"normalizers", json::array()}}},
      {"pre_tokenizer", tok::deepseek_v3_pre_tokenizer_json()},
      // BOS first, as add_bos_token says, so that libraries reading only tokenizer.json agree.
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", specials[0].first}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair",
         {{{"SpecialToken", {{"id", specials[0].first}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
          {{"SpecialToken", {{"id", specials[0].first}, {"type_id", 1}}}}, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens", {{specials[0].first, {{"id", specials[0].first}, {"ids", {0}}, {"tokens", {specials[0].first}}}}}}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab_json},
        {"merges", merges_json}}}};
  auto token_entry = [](const std::string& content) {
    return json{{"__type", "AddedToken"}, {"content", content}, {"lstrip", false}, {"normalized", true},
                {"rstrip", false}, {"single_word", false}};
  };
  out.tokenizer_config = {{"add_bos_token", true},
                          {"add_eos_token", false},
                          {"bos_token", token_entry(specials[0].first)},
                          {"eos_token", token_entry(specials[1].first)},
                          {"pad_token", token_entry(specials[1].first)},
                          {"unk_token", nullptr},
                          {"clean_up_tokenization_spaces", false},
                          {"legacy", true},
                          {"model_max_length", 131072},
                          {"sp_model_kwargs", json::object()},
                          {"tokenizer_class", "LlamaTokenizerFast"},
                          {"chat_template", kDeepSeekV3ChatTemplate}};
  say(fmt::format("done: {} merges, vocabulary {}", merges.size(), vocab.size()));
  return out;
}

void save_trained_tokenizer(const TrainedTokenizer& t, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail("{}: cannot create folder: {}", dir, ec.message());
  write_file_atomic(dir + "/tokenizer.json", t.tokenizer.dump(2, ' ', false));
  write_file_atomic(dir + "/tokenizer_config.json", t.tokenizer_config.dump(2, ' ', false));
}

}  // namespace dseek
