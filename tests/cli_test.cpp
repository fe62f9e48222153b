// The dseek command line as a new user meets it: the command list, --help of every command, typos answered with
// the closest spelling in the order typed, one spelling of the task seed.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/parse_errors.h"
#include "core/fileio.h"
#include "core/tensor.h"
#include "formats/safetensors.h"
#include "test_util.h"

namespace dseek {
namespace {

using test::CommandResult;
using test::run_dseek;

// The subcommands `dseek` lists (the lines of its "Subcommands:" section).
std::vector<std::string> listed_commands(const std::string& help) {
  std::vector<std::string> names;
  std::istringstream in(help.substr(help.find("Subcommands:")));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line) && line.rfind("  ", 0) == 0) names.push_back(line.substr(2, line.find(' ', 2) - 2));
  return names;
}

TEST(Cli, ClosestSpellingIsATypoOrAnUnambiguousAbbreviation) {
  const std::vector<std::string> flags{"--steps", "--seq-len", "--seed", "--temperature", "--top-k", "--top-p", "--help"};
  EXPECT_EQ(cli::closest_spelling("--step", flags), "--steps");
  EXPECT_EQ(cli::closest_spelling("--seqlen", flags), "--seq-len");
  EXPECT_EQ(cli::closest_spelling("--temprature", flags), "--temperature");
  EXPECT_EQ(cli::closest_spelling("--temp", flags), "--temperature");  // prefix of one flag only
  EXPECT_EQ(cli::closest_spelling("--topk", flags), "--top-k");
  EXPECT_EQ(cli::closest_spelling("--se", flags), "");  // too short to guess
  EXPECT_EQ(cli::closest_spelling("--xyz", flags), "");
  EXPECT_EQ(cli::closest_spelling("trian", {"train", "init", "sft"}), "train");  // swapped letters
}

TEST(Cli, BareDseekListsTheCommandsAndEveryHelpWorks) {
  CommandResult r = run_dseek("");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::vector<std::string> commands = listed_commands(r.out);
  for (const char* expected : {"init", "logits", "generate", "train", "sft", "grpo", "distill", "eval", "prepare", "tokenizer", "task"})
    EXPECT_NE(std::find(commands.begin(), commands.end(), expected), commands.end()) << expected << "\n" << r.out;
  for (const std::string& c : commands) {
    r = run_dseek(c + " --help");
    EXPECT_EQ(r.status, 0) << c << "\n" << r.out;
    EXPECT_NE(r.out.find("Usage: dseek " + c), std::string::npos) << r.out;
    // commands with their own subcommands: each of those has a --help too
    if (r.out.find("Subcommands:") == std::string::npos) continue;
    for (const std::string& s : listed_commands(r.out)) {
      CommandResult rs = run_dseek(c + " " + s + " --help");
      EXPECT_EQ(rs.status, 0) << c << " " << s << "\n" << rs.out;
      EXPECT_NE(rs.out.find("Usage: dseek " + c + " " + s), std::string::npos) << rs.out;
    }
  }
}

TEST(Cli, TyposGetTheClosestSpellingInTheOrderTyped) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"train --step 5", "dseek train: unknown flag --step (did you mean --steps?)\nRun 'dseek train --help' for the flags."},
      {"generate --temprature 0.5", "dseek generate: unknown flag --temprature (did you mean --temperature?)"},
      {"sft --batchsize=3", "dseek sft: unknown flag --batchsize (did you mean --batch-size?)"},
      {"grpo --xyz 1", "dseek grpo: unknown flag --xyz\n"},
      {"train 5", "dseek train: unexpected argument '5'"},
      {"trian", "dseek: unknown command 'trian' (did you mean train?)\nRun 'dseek --help' for the list of commands."},
      {"task exprt", "dseek task: unknown command 'exprt' (did you mean export?)"},
      {"tokenizer", "dseek tokenizer: give a command: train"},
  };
  for (const auto& [args, message] : cases) {
    CommandResult r = run_dseek(args);
    EXPECT_NE(r.status, 0) << args;
    EXPECT_EQ(r.out.rfind(message, 0), 0u) << args << "\n" << r.out;
  }
}

TEST(Cli, TheTaskSeedIsSpeltTheSameEverywhere) {
  test::TempDir d;
  // --task-seed everywhere; task export and eval keep --seed as its old name
  for (const std::string& c : {"task export", "eval", "grpo", "distill"}) {
    CommandResult r = run_dseek(c + " --help");
    EXPECT_NE(r.out.find("--task-seed"), std::string::npos) << c << "\n" << r.out;
  }
  const std::string common = " --task arithmetic --n 3 --format prompts --out ";
  ASSERT_EQ(run_dseek("task export --task-seed 4" + common + d / "a.jsonl").status, 0);
  ASSERT_EQ(run_dseek("task export --seed 4" + common + d / "b.jsonl").status, 0);
  ASSERT_EQ(run_dseek("task export --task-seed 5" + common + d / "c.jsonl").status, 0);
  const std::string a = read_file(d / "a.jsonl");
  EXPECT_FALSE(a.empty());
  EXPECT_EQ(a, read_file(d / "b.jsonl"));
  EXPECT_NE(a, read_file(d / "c.jsonl"));
}

// Every command with its default flags on the smallest shipped config (configs/tiny.json: MoE + MTP), given a
// 128-token context: only the inputs and outputs are given, and for the trainers the length of the run
// (--steps 1; distill also fewer teacher prompts, kept without a verifier, as a random teacher is never right).
TEST(Cli, EveryCommandRunsWithDefaultFlagsOnTheSmallestConfig) {
  test::TempDir d;
  // configs/tiny.json with a context of 128 positions: defaults (--seq-len 256, --max-tokens 256) must follow it
  nlohmann::json config = nlohmann::json::parse(read_file(test::source_dir() + "/configs/tiny.json"));
  config["max_position_embeddings"] = 128;
  const std::string tiny = d / "tiny-128.json", text = d / "text.txt";
  write_file_atomic(tiny, config.dump(2));
  write_file_atomic(text, read_file(test::source_dir() + "/data/tinyshakespeare.txt").substr(0, 40000));
  Tensor tokens = Tensor::zeros(DType::I32, {1, 4});
  for (int i = 0; i < 4; i++) tokens.as<int32_t>()[i] = 2 + i;
  save_safetensors(d / "tokens.safetensors", {{"tokens", tokens}});
  write_file_atomic(d / "lines.jsonl", "\"hello\"\n");
  write_file_atomic(d / "chats.jsonl", R"([{"role": "user", "content": "hi"}])" "\n");
  const std::string model = d / "model", tok = d / "tok";
  const std::vector<std::string> commands{
      "tokenizer train --vocab-size 512 --input '" + text + "' --out '" + tok + "'",
      "init --config '" + tiny + "' --tokenizer '" + tok + "' --out '" + model + "'",
      "logits --model '" + model + "' --input '" + d / "tokens.safetensors" + "' --output '" + d / "logits.safetensors" + "'",
      "generate --model '" + model + "' --prompt 'To be'",
      "tokenize --tokenizer '" + model + "' < '" + d / "lines.jsonl" + "'",
      "chat-template --tokenizer '" + model + "' < '" + d / "chats.jsonl" + "'",
      "prepare --tokenizer '" + tok + "' --input '" + text + "' --out '" + d / "data" + "'",
      "train --config '" + tiny + "' --data '" + d / "data" + "' --out '" + d / "train" + "' --steps 1",
      "task export --task arithmetic --out '" + d / "arith.jsonl" + "'",
      "sft --model '" + model + "' --data '" + d / "arith.jsonl" + "' --out '" + d / "sft" + "' --steps 1",
      "grpo --model '" + model + "' --task arithmetic --out '" + d / "grpo" + "' --steps 1",
      "eval --model '" + d / "grpo" + "' --task arithmetic",
      "distill --teacher '" + model + "' --student '" + tiny + "' --task arithmetic --out '" + d / "distill" +
          "' --steps 1 --n-prompts 8 --keep-all",
      "plot --run '" + d / "train" + "' --out '" + d / "plot.svg" + "'",
      "quantize --model '" + d / "train" + "' --to fp8 --out '" + d / "fp8" + "'",
      "generate --model '" + d / "fp8" + "' --prompt 'To be'"};
  for (const std::string& c : commands) {
    CommandResult r = run_dseek(c);
    EXPECT_EQ(r.status, 0) << c << "\n" << r.out;
  }
}

}  // namespace
}  // namespace dseek
