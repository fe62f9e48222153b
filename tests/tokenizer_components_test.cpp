// Generic tokenizer.json components against Hugging Face's Rust tokenizers (npm "tokenizers", run through
// bench/tokenizer/hf_reference.js): normalizers, pre-tokenizers with every split behavior, added-token
// options, post-processors and decoders, on the vector texts and random strings.
#include <fmt/format.h>

#include <random>

#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

namespace dseek::test {
namespace {

using nlohmann::json;

std::vector<std::string> sample_texts() {
  std::vector<std::string> texts;
  auto records = read_jsonl(shared_dir() + "/tokenizer-vectors/visible.jsonl");
  for (size_t i = 0; i < records.size(); i += 3) texts.push_back(records[i]["text"]);
  std::mt19937 rng(7);
  const std::u32string pool =
      U"aZqé ß  \t\n\r.,;:!?'\"-_()<>@#$%0123456789½①²٣\u00a0\u0085\u3000\ufeff\u200d\u0301\u0308你好カー한"
      U"😀\u00ad\u212b\u00c5\ufb01\u2460\u1e9b\u0323AΣσς İ";
  for (int i = 0; i < 150; ++i) {
    std::string s;
    int n = std::uniform_int_distribution<int>(0, 30)(rng);
    for (int k = 0; k < n; ++k) unicode::append_utf8(s, pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)]);
    texts.push_back(s);
  }
  texts.push_back("hello <mask> world<mask>x <mask>  [CLS] Yo  yo");
  texts.push_back("  leading and trailing  ");
  return texts;
}

// A small byte-level BPE vocabulary (trained here) to plug components into.
const TrainedTokenizer& small_bpe() {
  static TrainedTokenizer t = [] {
    std::string text = read_file_or_empty(source_dir() + "/data/tinyshakespeare.txt").substr(0, 200000);
    text += "你好 カタカナ 한국어 مرحبا 12345 ½ ① café naïve";
    BpeTrainerOptions opt;
    opt.vocab_size = 700;
    return train_bpe({text}, opt);
  }();
  return t;
}

struct Case {
  std::string name;
  json tokenizer;
};

// Results of the Rust library for `texts`: per text {ids, ids_special, decoded, decoded_skip}.
std::vector<json> reference(const json& tokenizer, const std::vector<std::string>& texts, TempDir& dir) {
  std::string path = dir / "tokenizer.json";
  std::ofstream(path) << tokenizer.dump();
  std::string req = dir / "requests.jsonl";
  {
    std::ofstream f(req);
    for (const std::string& t : texts) {
      f << json{{"encode", t}, {"add_special", false}}.dump() << "\n";
      f << json{{"encode", t}, {"add_special", true}}.dump() << "\n";
    }
  }
  int status = 0;
  std::string out = run_command("node '" + source_dir() + "/bench/tokenizer/hf_reference.js' rust '" + path + "' < '" +
                                    req + "'",
                                &status);
  EXPECT_EQ(status, 0) << out;
  std::vector<json> lines;
  std::stringstream ss(out);
  std::string line;
  while (std::getline(ss, line)) lines.push_back(json::parse(line));
  // Second round: decode the reference ids.
  {
    std::ofstream f(req);
    for (size_t i = 0; i + 1 < lines.size(); i += 2) {
      f << json{{"decode", lines[i]}, {"skip_special", false}}.dump() << "\n";
      f << json{{"decode", lines[i + 1]}, {"skip_special", true}}.dump() << "\n";
    }
  }
  out = run_command("node '" + source_dir() + "/bench/tokenizer/hf_reference.js' rust '" + path + "' < '" + req + "'",
                    &status);
  EXPECT_EQ(status, 0) << out;
  std::stringstream ds(out);
  std::vector<json> results;
  for (size_t i = 0; i + 1 < lines.size(); i += 2) {
    json r{{"ids", lines[i]}, {"ids_special", lines[i + 1]}};
    std::getline(ds, line);
    r["decoded"] = json::parse(line);
    std::getline(ds, line);
    r["decoded_skip"] = json::parse(line);
    results.push_back(r);
  }
  return results;
}

void check(const Case& c) {
  SCOPED_TRACE(c.name);
  std::vector<std::string> texts = sample_texts();
  TempDir dir;
  std::vector<json> ref = reference(c.tokenizer, texts, dir);
  ASSERT_EQ(ref.size(), texts.size());
  Tokenizer tok = Tokenizer::from_json(c.tokenizer, json(), c.name);
  int failures = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    auto ids = tok.encode(texts[i]);
    bool ok = ids == ref[i]["ids"].get<std::vector<int32_t>>() &&
              tok.encode(texts[i], true) == ref[i]["ids_special"].get<std::vector<int32_t>>() &&
              tok.decode(ref[i]["ids"].get<std::vector<int32_t>>()) == ref[i]["decoded"].get<std::string>() &&
              tok.decode(ref[i]["ids_special"].get<std::vector<int32_t>>(), true) ==
                  ref[i]["decoded_skip"].get<std::string>();
    if (!ok && ++failures <= 5)
      ADD_FAILURE() << json(texts[i]).dump() << "\n ours: " << json(ids).dump() << " " << json(tok.decode(ids)).dump()
                    << "\n ref:  " << ref[i].dump();
  }
  EXPECT_EQ(failures, 0) << "of " << texts.size();
}

json added(int id, const std::string& content, bool special, json flags = json::object()) {
  json a{{"id", id}, {"content", content}, {"single_word", false}, {"lstrip", false}, {"rstrip", false},
         {"normalized", !special}, {"special", special}};
  a.update(flags);
  return a;
}

json split(const std::string& kind, const std::string& pattern, const std::string& behavior, bool invert = false) {
  return {{"type", "Split"}, {"pattern", {{kind, pattern}}}, {"behavior", behavior}, {"invert", invert}};
}

json byte_level_tokenizer(json normalizer, json pre_tokenizer) {
  json t = small_bpe().tokenizer;
  t["normalizer"] = normalizer;
  t["pre_tokenizer"] = pre_tokenizer;
  return t;
}

TEST(TokenizerComponents, ByteLevelWithRegexAndPrefixSpace) {
  DSEEK_REQUIRE_NODE_MODULES();
  check({"gpt2", byte_level_tokenizer(nullptr, {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"use_regex", true},
                                                {"trim_offsets", true}})});
}

TEST(TokenizerComponents, SplitBehaviorsAndDigits) {
  DSEEK_REQUIRE_NODE_MODULES();
  for (const char* behavior : {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"}) {
    for (bool invert : {false, true}) {
      json seq = {{"type", "Sequence"},
                  {"pretokenizers",
                   {split("Regex", "\\s+|[.,!?]", behavior, invert), split("String", "e", behavior, invert),
                    {{"type", "Digits"}, {"individual_digits", invert}},
                    {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}, {"trim_offsets", true}}}}};
      check({std::string("split-") + behavior + (invert ? "-invert" : ""), byte_level_tokenizer(nullptr, seq)});
    }
  }
}

TEST(TokenizerComponents, Normalizers) {
  DSEEK_REQUIRE_NODE_MODULES();
  json pre = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}, {"trim_offsets", true}};
  for (const char* form : {"NFC", "NFD", "NFKC", "NFKD"})
    check({form, byte_level_tokenizer({{"type", form}}, pre)});
  check({"lowercase-replace-prepend",
         byte_level_tokenizer({{"type", "Sequence"},
                               {"normalizers",
                                {{{"type", "Lowercase"}},
                                 {{"type", "Replace"}, {"pattern", {{"Regex", "\\s+"}}}, {"content", " "}},
                                 {{"type", "Replace"}, {"pattern", {{"String", "é"}}}, {"content", "e"}},
                                 {{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}},
                                 {{"type", "Prepend"}, {"prepend", "_"}}}}},
                              pre)});
}

TEST(TokenizerComponents, AddedTokenOptionsAndTemplate) {
  DSEEK_REQUIRE_NODE_MODULES();
  json t = byte_level_tokenizer({{"type", "Lowercase"}}, {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}, {"trim_offsets", true}});
  int n = int(t["model"]["vocab"].size());
  t["added_tokens"].push_back(added(n, "<mask>", false, {{"lstrip", true}, {"rstrip", true}, {"single_word", true}}));
  t["added_tokens"].push_back(added(n + 1, "[CLS]", true));
  t["added_tokens"].push_back(added(n + 2, "yo", false, {{"normalized", true}}));
  t["added_tokens"].push_back(added(n + 3, "ing", false, {{"single_word", true}, {"normalized", false}}));
  t["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", {{{"SpecialToken", {{"id", "[CLS]"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                  {{"SpecialToken", {{"id", "<｜end▁of▁sentence｜>"}, {"type_id", 0}}}}}},
      {"pair", {{{"Sequence", {{"id", "A"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
      {"special_tokens",
       {{"[CLS]", {{"id", "[CLS]"}, {"ids", {n + 1}}, {"tokens", {"[CLS]"}}}},
        {"<｜end▁of▁sentence｜>", {{"id", "<｜end▁of▁sentence｜>"}, {"ids", {1}}, {"tokens", {"<｜end▁of▁sentence｜>"}}}}}}};
  check({"added-tokens", t});
}

// SentencePiece-style BPE: Metaspace, byte fallback, unknown token, and the matching decoders.
TEST(TokenizerComponents, MetaspaceByteFallbackAndDecoders) {
  DSEEK_REQUIRE_NODE_MODULES();
  json vocab = json::object();
  int id = 0;
  vocab["<unk>"] = id++;
  vocab["<s>"] = id++;
  for (int b = 0; b < 256; ++b) vocab[fmt::format("<0x{:02X}>", b)] = id++;
  std::vector<std::string> chars = {"▁", "a", "b", "c", "d", "e", "h", "i", "l", "o", "r", "s", "t", "w", "T", "H",
                                    ".", ",", "你", "好"};
  for (auto& c : chars) vocab[c] = id++;
  json merges = json::array();
  for (auto [a, b] : std::vector<std::pair<std::string, std::string>>{
           {"▁", "t"}, {"h", "e"}, {"▁t", "he"}, {"e", "l"}, {"el", "l"}, {"ell", "o"}, {"▁", "h"}, {"▁h", "ello"}}) {
    vocab[a + b] = id++;
    merges.push_back({a, b});
  }
  for (const char* scheme : {"always", "first", "never"}) {
    for (bool split_flag : {true, false}) {
      json t = {{"version", "1.0"},
                {"truncation", nullptr},
                {"padding", nullptr},
                {"added_tokens", {added(1, "<s>", true)}},
                {"normalizer", {{"type", "Sequence"},
                                {"normalizers", {{{"type", "NFKC"}}, {{"type", "Replace"}, {"pattern", {{"String", "\t"}}}, {"content", "  "}}}}}},
                {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", scheme}, {"split", split_flag}}},
                {"post_processor", nullptr},
                {"decoder", {{"type", "Sequence"},
                             {"decoders", {{{"type", "Replace"}, {"pattern", {{"String", "▁"}}}, {"content", " "}},
                                           {{"type", "ByteFallback"}},
                                           {{"type", "Fuse"}},
                                           {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}}},
                {"model", {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", "<unk>"}, {"continuing_subword_prefix", nullptr},
                           {"end_of_word_suffix", nullptr}, {"fuse_unk", true}, {"byte_fallback", std::string(scheme) != "never"},
                           {"ignore_merges", false}, {"vocab", vocab}, {"merges", merges}}}};
      check({std::string("metaspace-") + scheme + (split_flag ? "" : "-nosplit"), t});
    }
  }
  json t = {{"version", "1.0"}, {"added_tokens", json::array()}, {"normalizer", nullptr},
            {"pre_tokenizer", {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}, {"split", true}}},
            {"post_processor", nullptr},
            {"decoder", {{"type", "Metaspace"}, {"replacement", "▁"}, {"prepend_scheme", "always"}, {"split", true}}},
            {"model", {{"type", "BPE"}, {"unk_token", "<unk>"}, {"fuse_unk", false}, {"byte_fallback", false},
                       {"vocab", vocab}, {"merges", merges}}}};
  check({"metaspace-decoder-unk", t});
}

}  // namespace
}  // namespace dseek::test
