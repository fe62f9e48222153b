// The dseek command line as a new user meets it: the command list, --help of every command, typos answered with
// the closest spelling in the order typed, one spelling of the task seed.
#include <gtest/gtest.h>

#include <sstream>

#include "cli/parse_errors.h"
#include "core/fileio.h"
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
  for (const char* expected : {"init", "generate", "train", "sft", "grpo", "distill", "eval", "prepare", "tokenizer", "task"})
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

}  // namespace
}  // namespace dseek
