// `dseek generate` with text: --prompt and --chat use the model folder's tokenizer.
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
  std::string id_out = stdout_of("generate --prompt-ids " + ids_arg + common);
  std::vector<int32_t> generated;
  std::stringstream ss(id_out);
  std::string item;
  while (std::getline(ss, item, ',')) generated.push_back(std::stoi(item));
  ASSERT_EQ(generated.size(), 24u);
  std::string text_out = stdout_of("generate --prompt 'ROMEO: '" + common);
  EXPECT_EQ(text_out, tok.decode(generated, true) + "\n");
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
