// BPE training: `dseek tokenizer train` output loads in Hugging Face tokenizers (tokenizers.js and the Rust
// library) and encodes identically there and in dseek; the chat format works with it.
#include "core/error.h"
#include "tokenizer/bpe_trainer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace dseek::test {
namespace {

using nlohmann::json;

std::vector<std::string> texts_to_check() {
  std::vector<std::string> texts;
  for (const json& r : read_jsonl(shared_dir() + "/tokenizer-vectors/visible.jsonl")) texts.push_back(r["text"]);
  for (const json& r : read_jsonl(shared_dir() + "/tokenizer-vectors/chat-visible.jsonl")) texts.push_back(r["rendered"]);
  return texts;
}

std::vector<json> run_reference(const std::string& lib, const std::string& dir, const std::vector<std::string>& texts,
                                bool add_special) {
  std::string req = dir + "/requests.jsonl";
  {
    std::ofstream f(req);
    for (const std::string& t : texts) f << json{{"encode", t}, {"add_special", add_special}}.dump() << "\n";
  }
  int status = 0;
  std::string out = run_command("node '" + source_dir() + "/bench/tokenizer/hf_reference.js' " + lib + " '" + dir +
                                    "/tokenizer.json' '" + dir + "/tokenizer_config.json' < '" + req + "' 2>&1",
                                &status);
  EXPECT_EQ(status, 0) << out;
  std::vector<json> lines;
  std::stringstream ss(out);
  std::string line;
  while (status == 0 && std::getline(ss, line)) lines.push_back(json::parse(line));
  return lines;
}

TEST(TokenizerTrain, SmallVocabularyMatchesHuggingFace) {
  DSEEK_REQUIRE_NODE_MODULES();
  TempDir dir;
  std::string corpus = dir / "corpus.txt";
  {
    std::ofstream f(corpus);
    f << read_file_or_empty(source_dir() + "/data/tinyshakespeare.txt").substr(0, 300000);
    for (const std::string& t : texts_to_check()) f << t << "\n";
  }
  std::string out_dir = dir / "tok";
  CommandResult r = run_dseek("tokenizer train --vocab-size 512 --input '" + corpus + "' --out '" + out_dir + "'");
  ASSERT_EQ(r.status, 0) << r.out;

  Tokenizer tok = Tokenizer::load(out_dir);
  EXPECT_EQ(tok.vocab_size(), 512u);
  EXPECT_EQ(tok.bos_id(), 0);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.chat_format().kind(), ChatFormat::Kind::DeepSeekV3);
  for (auto& [content, special] : deepseek_chat_special_tokens()) EXPECT_GE(tok.token_to_id(content), 0) << content;

  std::vector<std::string> texts = texts_to_check();
  auto js = run_reference("js", out_dir, texts, true);
  auto rust = run_reference("rust", out_dir, texts, true);
  ASSERT_EQ(js.size(), texts.size());
  ASSERT_EQ(rust.size(), texts.size());
  int failures = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    auto ids = tok.encode(texts[i]);
    auto with_bos = tok.encode(texts[i], true);
    bool ok = rust[i].get<std::vector<int32_t>>() == with_bos && js[i].get<std::vector<int32_t>>() == with_bos &&
              std::vector<int32_t>(with_bos.begin() + 1, with_bos.end()) == ids && tok.decode(ids) == texts[i];
    if (!ok && ++failures <= 5) ADD_FAILURE() << json(texts[i]).dump();
  }
  EXPECT_EQ(failures, 0);

  // The folder chats: the template renders and special tokens encode as single ids.
  json messages = json::parse(R"([{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello!"}])");
  ChatEncoding enc = tok.encode_chat(messages, false);
  EXPECT_EQ(enc.ids.front(), tok.bos_id());
  EXPECT_EQ(enc.ids[1], tok.token_to_id("<｜User｜>"));
  EXPECT_EQ(enc.ids.back(), tok.eos_id());
  EXPECT_EQ(enc.assistant_mask.back(), 1);
}

TEST(TokenizerTrain, RejectsAVocabularyTooSmallForTheReservedTokens) {
  BpeTrainerOptions opt;
  opt.vocab_size = 200;
  EXPECT_THROW(train_bpe({"hello"}, opt), Error);
  CommandResult r = run_dseek("tokenizer train --vocab-size 100 --input /nonexistent --out /tmp/x");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--input /nonexistent"), std::string::npos) << r.out;
}

TEST(TokenizerTrain, StopsWhenNoPairIsFrequentEnough) {
  BpeTrainerOptions opt;
  opt.vocab_size = 100000;
  TrainedTokenizer t = train_bpe({"abc abc abd"}, opt);
  EXPECT_LT(t.merges, 10u);
  Tokenizer tok = Tokenizer::from_json(t.tokenizer, t.tokenizer_config, "trained");
  EXPECT_EQ(tok.decode(tok.encode("abc abd xyz")), "abc abd xyz");
}

}  // namespace
}  // namespace dseek::test
