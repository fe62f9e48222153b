// A training run folder as users meet it: RUN/final (and RUN/latest) is a complete Hugging Face folder (the files and config keys
// transformers' save_pretrained writes), and the run folder itself works wherever a model or tokenizer folder does.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/fileio.h"
#include "model/model.h"
#include "test_util.h"

namespace dseek {
namespace {

using json = nlohmann::json;
using test::CommandResult;
using test::run_dseek;
namespace fs = std::filesystem;

json read_json(const std::string& path) { return json::parse(read_file(path)); }

// A tokenizer, token data made with it, and a 2-step run of the tiny config.
class RunFolder : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir;
    const std::string corpus = *dir_ / "corpus.txt";
    write_file_atomic(corpus, read_file(test::source_dir() + "/data/tinyshakespeare.txt").substr(0, 60000));
    CommandResult r = run_dseek("tokenizer train --vocab-size 512 --input '" + corpus + "' --out '" + *dir_ / "tok" + "'");
    ASSERT_EQ(r.status, 0) << r.out;
    r = run_dseek("prepare --tokenizer '" + *dir_ / "tok" + "' --input '" + corpus + "' --out '" + *dir_ / "data" + "'");
    ASSERT_EQ(r.status, 0) << r.out;
    r = run_dseek("train --config '" + test::source_dir() + "/configs/tiny.json' --data '" + *dir_ / "data" + "' --out '" +
                  *dir_ / "run" + "' --steps 2 --batch-size 2 --seq-len 32 --threads 2");
    ASSERT_EQ(r.status, 0) << r.out;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string run() { return *dir_ / "run"; }
  static test::TempDir* dir_;
};
test::TempDir* RunFolder::dir_ = nullptr;

TEST_F(RunFolder, FinalIsACompleteHuggingFaceFolderOfTheLastStep) {
  const std::string final_dir = run() + "/final", checkpoint = run() + "/checkpoints/step-00000002";
  std::set<std::string> files;
  for (const auto& e : fs::directory_iterator(final_dir)) files.insert(e.path().filename().string());
  EXPECT_EQ(files, (std::set<std::string>{"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
                                          "tokenizer_config.json"}));
  // the same weights as the last checkpoint, read back through the loader
  const Model a = Model::load(final_dir), b = Model::load(checkpoint);
  EXPECT_EQ(read_file(final_dir + "/model.safetensors"), read_file(checkpoint + "/model.safetensors"));
  EXPECT_EQ(a.config.to_json(), b.config.to_json());
  // RUN/latest is a model folder too: a link to the newest checkpoint
  EXPECT_TRUE(fs::is_symlink(run() + "/latest"));
  EXPECT_EQ(fs::canonical(run() + "/latest"), fs::canonical(checkpoint));
  EXPECT_EQ(Model::load(run() + "/latest").config.to_json(), b.config.to_json());
  // config.json says how the weights are stored; generation_config.json carries the special ids (no sampling
  // defaults were set, so transformers decodes greedily, as it does for save_pretrained's own file)
  const json config = read_json(final_dir + "/config.json"), gen = read_json(final_dir + "/generation_config.json");
  EXPECT_EQ(config["torch_dtype"], "float32");
  EXPECT_EQ(gen, (json{{"bos_token_id", config["bos_token_id"]}, {"eos_token_id", config["eos_token_id"]}}));
}

TEST_F(RunFolder, ARunFolderWorksWhereverATokenizerFolderDoes) {
  const std::string tok = *dir_ / "tok";
  test::TempDir d;
  write_file_atomic(d / "lines.jsonl", "\"ROMEO: wherefore\"\n\"\"\n");
  auto tokenize = [&](const std::string& t) {
    return run_dseek("tokenize --tokenizer '" + t + "' < '" + d / "lines.jsonl" + "'");
  };
  CommandResult from_tok = tokenize(tok), from_run = tokenize(run());
  ASSERT_EQ(from_run.status, 0) << from_run.out;
  EXPECT_EQ(from_run.out, from_tok.out);
  write_file_atomic(d / "chats.jsonl", R"([{"role": "user", "content": "hi"}])" "\n");
  CommandResult chat = run_dseek("chat-template --tokenizer '" + run() + "' < '" + d / "chats.jsonl" + "'");
  EXPECT_EQ(chat.status, 0) << chat.out;
  EXPECT_EQ(chat.out, run_dseek("chat-template --tokenizer '" + tok + "' < '" + d / "chats.jsonl" + "'").out);
  CommandResult prep = run_dseek("prepare --tokenizer '" + run() + "' --input '" + *dir_ / "corpus.txt" + "' --out '" + d / "data" + "'");
  ASSERT_EQ(prep.status, 0) << prep.out;
  EXPECT_EQ(read_file(d / "data/tokenizer.json"), read_file(tok + "/tokenizer.json"));
  CommandResult init = run_dseek("init --config '" + test::source_dir() + "/configs/tiny.json' --tokenizer '" + run() +
                                 "' --out '" + d / "m" + "'");
  ASSERT_EQ(init.status, 0) << init.out;
  EXPECT_EQ(read_file(d / "m/tokenizer.json"), read_file(tok + "/tokenizer.json"));
  // a folder that is neither says so
  fs::create_directories(d / "empty");
  CommandResult bad = run_dseek("tokenize --tokenizer '" + d / "empty" + "' < '" + d / "lines.jsonl" + "'");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find(d / "empty" + ": no tokenizer.json in this folder"), std::string::npos) << bad.out;
}

TEST_F(RunFolder, ChartsAreXmlWithAxisLabelsAndTheRealLayerIndices) {
  // tiny.json: layer 0 dense, layers 1-2 MoE, one MTP block (checkpoint layer 3)
  const json last = json::parse(read_file(run() + "/metrics.jsonl").substr(read_file(run() + "/metrics.jsonl").rfind('{')));
  EXPECT_EQ(last["moe_layers"], (json{1, 2, 3})) << last.dump();
  EXPECT_EQ(last["mtp_first_layer"], 3) << last.dump();
  for (const char* chart : {"loss.svg", "expert_load.svg", "expert_load_last.svg"}) {
    const std::string path = run() + "/" + chart;
    CommandResult lint = test::run_shell("xmllint --noout '" + path + "'");
    EXPECT_EQ(lint.status, 0) << chart << ": " << lint.out;
    const std::string svg = read_file(path);
    EXPECT_EQ(svg.find(">-0<"), std::string::npos) << chart;
    EXPECT_EQ(svg.find("layer 0"), std::string::npos) << chart;  // the dense layer has no experts
  }
  const std::string loss = read_file(run() + "/loss.svg"), load = read_file(run() + "/expert_load.svg"),
                    heat = read_file(run() + "/expert_load_last.svg");
  for (const char* label : {">step<", ">cross-entropy (nats)<", ">train loss<", ">MTP loss<"})
    EXPECT_NE(loss.find(label), std::string::npos) << label;
  EXPECT_EQ(loss.find(">1.5<"), std::string::npos) << "ticks between steps";
  for (const char* label : {">step<", ">max / mean<", ">layer 1<", ">layer 2<", ">layer 3 (MTP 1)<"})
    EXPECT_NE(load.find(label), std::string::npos) << label;
  for (const char* label : {">expert<", ">MoE layer<", ">tokens / mean<", ">layer 1<", ">layer 3 (MTP 1)<", ">7</text>"})
    EXPECT_NE(heat.find(label), std::string::npos) << label;
}

TEST(Files, ReadingAFolderAsAFileIsAnErrorNamingIt) {
  test::TempDir d;
  EXPECT_EQ(test::error_of([&] { read_file(d.str()); }), d.str() + ": is a folder, not a file");
  // a command given a folder where it reads a file
  CommandResult r = run_dseek("tokenizer train --vocab-size 300 --input '" + d.str() + "' --out '" + d / "tok" + "'");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--input " + d.str() + ": is a folder, not a file"), std::string::npos) << r.out;
}

TEST(SavedFolders, Qwen2ConfigHasTheKeysTransformersWrites) {
  // ../shared/conformance/qwen2-tiny/config.json was written by transformers' save_pretrained
  const std::string ref = test::shared_dir() + "/conformance/qwen2-tiny";
  test::TempDir d;
  CommandResult r = run_dseek("init --config '" + ref + "/config.json' --out '" + d / "m" + "'");
  ASSERT_EQ(r.status, 0) << r.out;
  const json theirs = read_json(ref + "/config.json"), ours = read_json(d / "m/config.json");
  for (auto it = theirs.begin(); it != theirs.end(); ++it) {
    if (it.key() == "transformers_version") continue;  // dseek does not claim a transformers version
    ASSERT_TRUE(ours.contains(it.key())) << it.key();
    EXPECT_EQ(ours[it.key()], it.value()) << it.key();
  }
  const json gen = read_json(d / "m/generation_config.json");
  EXPECT_EQ(gen, (json{{"bos_token_id", theirs["bos_token_id"]}, {"eos_token_id", theirs["eos_token_id"]}}));
}

}  // namespace
}  // namespace dseek
