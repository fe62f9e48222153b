// `dseek generate` with text: --prompt and --chat use the model folder's tokenizer.
#include "core/fileio.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer_test_util.h"

namespace dseek::test {
namespace {

// A tiny random model with a tokenizer trained into the same folder.
class TokenizerGenerate : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    std::string corpus = *dir_ / "corpus.txt";
    std::ofstream(corpus) << read_file_or_empty(source_dir() + "/data/tinyshakespeare.txt").substr(0, 100000);
    model_ = *dir_ / "model";
    ASSERT_EQ(run_dseek("init --config '" + source_dir() + "/configs/tiny.json' --out '" + model_ + "'").status, 0);
    CommandResult r = run_dseek("tokenizer train --vocab-size 512 --input '" + corpus + "' --out '" + model_ + "'");
    ASSERT_EQ(r.status, 0) << r.out;
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
  static std::string model_;
};
TempDir* TokenizerGenerate::dir_ = nullptr;
std::string TokenizerGenerate::model_;

std::string stdout_of(const std::string& args) {
  int status = 0;
  std::string out = run_command(dseek_binary() + " " + args + " 2>/dev/null", &status);
  EXPECT_EQ(status, 0) << args;
  return out;
}

TEST_F(TokenizerGenerate, PromptTextEqualsTheDecodedIdsOfTheSameGeneration) {
  Tokenizer tok = Tokenizer::load(model_);
  std::vector<int32_t> prompt = tok.encode("ROMEO: ", true);
  ASSERT_EQ(prompt.front(), tok.bos_id());
  std::string ids_arg;
  for (int32_t id : prompt) ids_arg += (ids_arg.empty() ? "" : ",") + std::to_string(id);
  std::string common = " --model '" + model_ + "' -n 24 --temperature 0 --ignore-eos";
  std::string id_out = stdout_of("generate --print-ids --prompt-ids " + ids_arg + common);
  std::vector<int32_t> generated;
  std::stringstream ss(id_out);
  std::string item;
  while (std::getline(ss, item, ',')) generated.push_back(std::stoi(item));
  ASSERT_EQ(generated.size(), 24u);
  std::string text_out = stdout_of("generate --prompt 'ROMEO: '" + common);
  EXPECT_EQ(text_out, tok.decode(generated, true) + "\n");
  // --prompt-ids prints text too when the model has a tokenizer; --print-ids prints ids for a text prompt
  EXPECT_EQ(stdout_of("generate --prompt-ids " + ids_arg + common), text_out);
  EXPECT_EQ(stdout_of("generate --print-ids --prompt 'ROMEO: '" + common), id_out);
}

TEST_F(TokenizerGenerate, AnEmptyPromptStartsFromBos) {
  Tokenizer tok = Tokenizer::load(model_);
  ASSERT_GE(tok.bos_id(), 0);
  const std::string common = " --model '" + model_ + "' -n 6 --temperature 0 --ignore-eos --print-ids";
  const std::string from_bos = stdout_of("generate --prompt ''" + common);
  EXPECT_EQ(from_bos, stdout_of("generate --prompt-ids " + std::to_string(tok.bos_id()) + common));
  EXPECT_EQ(std::count(from_bos.begin(), from_bos.end(), ','), 5) << from_bos;
}

TEST_F(TokenizerGenerate, SamplingDefaultsComeFromGenerationConfigElseLlamaCpp) {
  // a copy of the model folder with its own generation_config.json
  TempDir d;
  const std::string copy = d / "m";
  std::filesystem::copy(model_, copy, std::filesystem::copy_options::recursive);
  const std::string common = " -n 12 --ignore-eos --print-ids --seed 7 --prompt 'ROMEO: '";
  // no file: llama.cpp's 0.8 / 40 / 0.95
  std::filesystem::remove(copy + "/generation_config.json");  // (init writes one like save_pretrained does)
  const std::string llama = stdout_of("generate --model '" + copy + "'" + common);
  EXPECT_EQ(llama, stdout_of("generate --model '" + copy + "' --temperature 0.8 --top-k 40 --top-p 0.95" + common));
  // a file without do_sample means greedy in transformers
  write_file_atomic(copy + "/generation_config.json", R"({"bos_token_id": 0, "eos_token_id": 1, "temperature": 0.6})");
  EXPECT_EQ(stdout_of("generate --model '" + copy + "'" + common),
            stdout_of("generate --model '" + copy + "' --temperature 0" + common));
  // do_sample with some fields: the others take transformers' defaults (top_k 50, top_p 1)
  write_file_atomic(copy + "/generation_config.json", R"({"do_sample": true, "temperature": 1.3, "top_p": 0.9})");
  const std::string sampled = stdout_of("generate --model '" + copy + "'" + common);
  EXPECT_EQ(sampled, stdout_of("generate --model '" + copy + "' --temperature 1.3 --top-k 50 --top-p 0.9" + common));
  EXPECT_NE(sampled, llama);
  // a flag overrides the file
  EXPECT_EQ(stdout_of("generate --model '" + copy + "' --temperature 0" + common),
            stdout_of("generate --model '" + model_ + "' --temperature 0" + common));
  // a bad field is an error naming the file and the field
  write_file_atomic(copy + "/generation_config.json", R"({"do_sample": true, "top_p": 2})");
  CommandResult r = run_dseek("generate --model '" + copy + "'" + common);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find(copy + "/generation_config.json: field 'top_p' must be in (0, 1]"), std::string::npos) << r.out;
}

TEST_F(TokenizerGenerate, StopStringCutsTheText) {
  std::string full = stdout_of("generate --model '" + model_ + "' --prompt 'To be' -n 40 --temperature 0 --ignore-eos");
  ASSERT_GT(full.size(), 4u);
  std::string stop = full.substr(full.size() / 2, 2);
  std::string cut = stdout_of("generate --model '" + model_ + "' --prompt 'To be' -n 40 --temperature 0 --ignore-eos --stop '" +
                              stop + "'");
  EXPECT_EQ(cut, full.substr(0, full.find(stop)) + "\n");
}

TEST_F(TokenizerGenerate, ChatRepliesToEachLine) {
  std::string in = *dir_ / "chat.txt";
  std::ofstream(in) << "Hello there\nHow are you?\n";
  std::string out = stdout_of("generate --model '" + model_ + "' --chat --system 'Be brief.' -n 8 --temperature 0 < '" + in + "'");
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n') >= 2, true) << out;
}

TEST_F(TokenizerGenerate, MissingTokenizerIsAClearError) {
  TempDir d;
  std::string m = d / "m";
  ASSERT_EQ(run_dseek("init --config '" + source_dir() + "/configs/tiny.json' --out '" + m + "'").status, 0);
  CommandResult r = run_dseek("generate --model '" + m + "' --prompt hi");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("dseek: error: --model " + m + ": no tokenizer.json in " + m), std::string::npos) << r.out;
  r = run_dseek("generate --model '" + m + "'");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("give --prompt-ids, --prompt or --chat"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace dseek::test
