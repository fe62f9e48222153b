// Tokenizer API: batch encoding, streaming decode, lookups, errors, and the tokenize / chat-template CLI.
#include <random>

#include "core/error.h"
#include "core/threads.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "tokenizer_test_util.h"

namespace dseek::test {
namespace {

using nlohmann::json;

const Tokenizer& deepseek() {
  static Tokenizer t = Tokenizer::load(deepseek_v3_dir());
  return t;
}

std::vector<std::string> vector_texts() {
  std::vector<std::string> texts;
  for (const json& r : read_jsonl(shared_dir() + "/tokenizer-vectors/visible.jsonl")) texts.push_back(r["text"]);
  return texts;
}

TEST(TokenizerApi, LookupsAndSpecialIds) {
  DSEEK_REQUIRE_NODE_MODULES();
  const Tokenizer& tok = deepseek();
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.vocab_size(), 128815u);
  EXPECT_EQ(tok.token_to_id("<｜User｜>"), 128803);
  EXPECT_EQ(tok.id_to_token(128803), "<｜User｜>");
  EXPECT_EQ(tok.token_to_id("Ġthe"), tok.encode(" the")[0]);
  EXPECT_EQ(tok.token_to_id("no such token"), -1);
  EXPECT_EQ(tok.id_to_token(999999), "");
  EXPECT_TRUE(tok.is_special(0));
  EXPECT_FALSE(tok.is_special(128803));
}

TEST(TokenizerApi, BatchEqualsOneByOne) {
  DSEEK_REQUIRE_NODE_MODULES();
  const Tokenizer& tok = deepseek();
  std::vector<std::string> texts = vector_texts();
  set_num_threads(2);
  auto batch = tok.encode_batch(texts, true);
  ASSERT_EQ(batch.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(batch[i], tok.encode(texts[i], true));
  set_num_threads(0);
  EXPECT_THROW(tok.encode_batch({"ok", std::string("\xff")}), Error);
}

TEST(TokenizerApi, StreamingDecodeEmitsWholeCharactersOnly) {
  DSEEK_REQUIRE_NODE_MODULES();
  const Tokenizer& tok = deepseek();
  std::vector<std::string> texts = vector_texts();
  texts.push_back("<｜User｜>你好😀👍🏽 مرحبا<｜end▁of▁sentence｜>");
  for (bool skip : {false, true}) {
    for (const std::string& text : texts) {
      std::vector<int32_t> ids = tok.encode(text, true);
      StreamDecoder stream(tok, skip);
      std::string all;
      for (int32_t id : ids) {
        std::string piece = stream.push(id);
        EXPECT_EQ(unicode::find_invalid_utf8(piece), std::string::npos);
        all += piece;
      }
      all += stream.flush();
      EXPECT_EQ(all, tok.decode(ids, skip)) << json(text).dump();
    }
  }
  // Bytes of one character split over tokens are held back until the character is complete.
  std::vector<int32_t> ids = tok.encode("😀");
  ASSERT_GT(ids.size(), 1u);
  StreamDecoder stream(tok);
  for (size_t i = 0; i + 1 < ids.size(); ++i) EXPECT_EQ(stream.push(ids[i]), "");
  EXPECT_EQ(stream.push(ids.back()), "😀");
}

TEST(TokenizerApi, BadInputFailsWithOneClearLine) {
  DSEEK_REQUIRE_NODE_MODULES();
  try {
    deepseek().encode("ok \xC3(");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "text to encode is not valid UTF-8 (byte 3)");
  }
  TempDir dir;
  auto expect_error = [&](const json& tokenizer, const std::string& needle) {
    std::ofstream(dir / "tokenizer.json") << tokenizer.dump();
    try {
      Tokenizer::load(dir.str());
      ADD_FAILURE() << "no error for " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  json base = {{"model", {{"type", "BPE"}, {"vocab", {{"a", 0}, {"b", 1}, {"ab", 2}}}, {"merges", {"a b"}}}}};
  json t = base;
  t["model"]["type"] = "WordPiece";
  expect_error(t, "unsupported model type 'WordPiece'");
  t = base;
  t["pre_tokenizer"] = {{"type", "BertPreTokenizer"}};
  expect_error(t, "pre_tokenizer: unsupported pre-tokenizer type 'BertPreTokenizer'");
  t = base;
  t["normalizer"] = {{"type", "Precompiled"}, {"precompiled_charsmap", ""}};
  expect_error(t, "normalizer: unsupported normalizer type 'Precompiled'");
  t = base;
  t["decoder"] = {{"type", "WordPiece"}};
  expect_error(t, "decoder: unsupported decoder type 'WordPiece'");
  t = base;
  t["model"]["merges"] = {"a c"};
  expect_error(t, "model.merges[0]: token 'c' is not in the vocab");
  t = base;
  t["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
  expect_error(t, "regex '(unclosed' does not compile");
  std::ofstream(dir / "tokenizer.json") << "{not json";
  EXPECT_THROW(Tokenizer::load(dir.str()), Error);
  EXPECT_THROW(Tokenizer::load(dir / "missing"), Error);
}

TEST(TokenizerApi, TokenizeCliRoundTrips) {
  DSEEK_REQUIRE_NODE_MODULES();
  TempDir dir;
  std::vector<json> records = read_jsonl(shared_dir() + "/tokenizer-vectors/visible.jsonl");
  {
    std::ofstream f(dir / "in.jsonl"), g(dir / "ids.jsonl");
    for (const json& r : records) {
      f << r["text"].dump() << "\n";
      g << r["ids"].dump() << "\n";
    }
  }
  std::string tokenizer = deepseek_v3_dir() + "/tokenizer.json";
  CommandResult enc = run_dseek("tokenize --tokenizer '" + tokenizer + "' --add-special < '" + (dir / "in.jsonl") + "'");
  ASSERT_EQ(enc.status, 0) << enc.out.substr(0, 500);
  CommandResult dec =
      run_dseek("tokenize --tokenizer '" + deepseek_v3_dir() + "' --decode < '" + (dir / "ids.jsonl") + "'");
  ASSERT_EQ(dec.status, 0) << dec.out.substr(0, 500);
  std::stringstream es(enc.out), ds(dec.out);
  std::string line;
  for (const json& r : records) {
    ASSERT_TRUE(std::getline(es, line));
    EXPECT_EQ(json::parse(line), r["ids_with_special"]);
    ASSERT_TRUE(std::getline(ds, line));
    EXPECT_EQ(json::parse(line), r["decoded"]);
  }
  std::ofstream(dir / "bad.jsonl") << "[1, \"x\"]\n";
  CommandResult bad = run_dseek("tokenize --tokenizer '" + tokenizer + "' --decode < '" + (dir / "bad.jsonl") + "'");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("dseek: error: stdin line 1: \"x\" is not a token id"), std::string::npos) << bad.out;
  CommandResult missing = run_dseek("tokenize --tokenizer /nonexistent/folder < /dev/null");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.out.find("/nonexistent/folder: no such file or folder"), std::string::npos) << missing.out;
}

TEST(TokenizerApi, ChatTemplateCliRendersTheVectors) {
  DSEEK_REQUIRE_NODE_MODULES();
  TempDir dir;
  std::vector<json> records = read_jsonl(shared_dir() + "/tokenizer-vectors/chat-visible.jsonl");
  for (bool gen : {false, true}) {
    std::vector<json> subset;
    {
      std::ofstream f(dir / "in.jsonl");
      for (const json& r : records)
        if (r["add_generation_prompt"] == gen) {
          f << r["messages"].dump() << "\n";
          subset.push_back(r);
        }
    }
    CommandResult out = run_dseek("chat-template --tokenizer '" + deepseek_v3_dir() + "'" +
                                  (gen ? " --add-generation-prompt" : "") + " < '" + (dir / "in.jsonl") + "'");
    ASSERT_EQ(out.status, 0) << out.out;
    std::stringstream ss(out.out);
    std::string line;
    for (const json& r : subset) {
      ASSERT_TRUE(std::getline(ss, line));
      EXPECT_EQ(json::parse(line), r["rendered"]) << r["id"];
    }
  }
}

}  // namespace
}  // namespace dseek::test
