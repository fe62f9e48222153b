// Conformance with Hugging Face tokenizers on DeepSeek-V3's tokenizer: ../shared/tokenizer-vectors.
#include <sys/wait.h>

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

TEST(TokenizerVectors, FilesHaveTheExpectedHashes) {
  DSEEK_REQUIRE_NODE_MODULES();
  std::string out = run_command("cd '" + deepseek_v3_dir() + "' && sha256sum tokenizer.json tokenizer_config.json");
  EXPECT_NE(out.find("621ac2e32d0dba658404412318818aaa8ce8cda492e59830109d8da6b517fb41  tokenizer.json"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("637bcd1a08cf7c772ce6a383196b22930921c79c3c73223c5afc0c7f41545546  tokenizer_config.json"),
            std::string::npos)
      << out;
}

TEST(TokenizerVectors, EncodeAndDecodeEveryRecord) {
  DSEEK_REQUIRE_NODE_MODULES();
  auto records = read_jsonl(vectors("visible.jsonl"));
  ASSERT_GT(records.size(), 300u);
  const Tokenizer& tok = deepseek();
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

TEST(TokenizerVectors, ChatRenderingsAndTheirIds) {
  DSEEK_REQUIRE_NODE_MODULES();
  auto records = read_jsonl(vectors("chat-visible.jsonl"));
  ASSERT_GT(records.size(), 15u);
  const Tokenizer& tok = deepseek();
  EXPECT_EQ(tok.chat_format().kind(), ChatFormat::Kind::DeepSeekV3);
  for (const json& r : records) {
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
TEST(TokenizerVectors, RandomTextsMatchTheRustLibrary) {
  DSEEK_REQUIRE_NODE_MODULES();
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
  std::string out = run_command("node '" + source_dir() + "/bench/tokenizer/hf_reference.js' rust '" + deepseek_v3_dir() +
                                    "/tokenizer.json' < '" + (dir / "requests.jsonl") + "'",
                                &status);
  ASSERT_EQ(status, 0) << out.substr(0, 1000);
  std::stringstream ss(out);
  std::string line;
  int failures = 0;
  for (const std::string& t : texts) {
    ASSERT_TRUE(std::getline(ss, line));
    auto ids = deepseek().encode(t);
    if (nlohmann::json::parse(line).get<std::vector<int32_t>>() != ids && ++failures <= 5)
      ADD_FAILURE() << nlohmann::json(t).dump();
    if (deepseek().decode(ids) != t && ++failures <= 5) ADD_FAILURE() << "round trip " << nlohmann::json(t).dump();
  }
  EXPECT_EQ(failures, 0) << "of " << texts.size();
}

}  // namespace
}  // namespace dseek::test
