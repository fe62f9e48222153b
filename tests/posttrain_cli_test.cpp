// The post-training commands as users (and checks) run them: sft, grpo and distill on a tiny model, their
// metrics files, resumption, and run folders accepted wherever a model folder is.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/fileio.h"
#include "test_util.h"
#include "tokenizer_test_util.h"

namespace dseek {
namespace {

using nlohmann::json;
using test::CommandResult;
using test::run_dseek;
using test::TempDir;

std::vector<json> read_metrics(const std::string& path) {
  std::vector<json> out;
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) out.push_back(json::parse(line));
  return out;
}

std::string last_line(std::string s) {
  while (!s.empty() && s.back() == '\n') s.pop_back();
  const size_t nl = s.rfind('\n');
  return nl == std::string::npos ? s : s.substr(nl + 1);
}

class PosttrainCli : public ::testing::Test {
 protected:
  // A tiny MoE model with a 512-token tokenizer trained on the tasks' text.
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    model_ = *dir_ / "model";
    chats_ = *dir_ / "chats.jsonl";
    const std::string text = *dir_ / "tasks.txt", cd = *dir_ / "countdown.txt";
    for (const std::string& args :
         {"task export --task arithmetic --format text --n 300 --out '" + text + "'",
          "task export --task countdown --format text --n 300 --out '" + cd + "'",
          "task export --task arithmetic --format chat --n 64 --ops +- --out '" + chats_ + "'",
          "tokenizer train --vocab-size 512 --input '" + text + "' '" + cd + "' --out '" + *dir_ / "tok" + "'",
          "init --config '" + test::source_dir() + "/configs/tiny.json' --tokenizer '" + *dir_ / "tok" + "' --out '" +
              model_ + "' --seed 2"}) {
      CommandResult r = run_dseek(args);
      ASSERT_EQ(r.status, 0) << args << "\n" << r.out;
    }
  }
  static void TearDownTestSuite() { delete dir_; }
  static TempDir* dir_;
  static std::string model_, chats_;
};
TempDir* PosttrainCli::dir_ = nullptr;
std::string PosttrainCli::model_, PosttrainCli::chats_;

// Every training command takes the low-precision recipes (docs/low-precision.md) and reports them per step.
TEST_F(PosttrainCli, SftGrpoAndDistillTrainInFp8AndFp16) {
  TempDir d;
  for (const std::string p : {"fp8", "fp16"}) {
    SCOPED_TRACE(p);
    const std::string key = p == "fp8" ? "act_underflow" : "loss_scale";
    const std::vector<std::pair<std::string, std::string>> runs{
        {"sft", "sft --model '" + model_ + "' --data '" + chats_ + "' --steps 2 --batch-size 2 --seq-len 64"},
        {"grpo", "grpo --model '" + model_ + "' --task arithmetic --steps 1 --group-size 2 --prompts-per-step 2 "
                 "--max-new-tokens 8"},
        {"distill", "distill --teacher '" + model_ + "' --student '" + test::source_dir() +
                        "/configs/tiny.json' --task arithmetic --n-prompts 4 --samples-per-prompt 2 --max-new-tokens 8 "
                        "--keep-all --steps 2 --batch-size 2 --seq-len 64"}};
    for (const auto& [name, cmd] : runs) {
      const std::string out = d / (name + p);
      CommandResult r = run_dseek(cmd + " --out '" + out + "' --precision " + p + " --threads 1");
      ASSERT_EQ(r.status, 0) << name << "\n" << r.out;
      const std::string run = name == "distill" ? out + "/student" : out;  // distill trains its student there
      int rows = 0;
      for (const json& j : read_metrics(run + "/metrics.jsonl"))
        if (j.contains("loss") || j.contains("reward_mean")) {
          rows++;
          EXPECT_TRUE(j.contains(key)) << name << ": " << j.dump();
        }
      EXPECT_GT(rows, 0) << name;
      EXPECT_NE(read_file(run + "/run.json").find("\"precision\": \"" + p + "\""), std::string::npos) << name;
    }
  }
}

TEST_F(PosttrainCli, SftTrainsResumesAndItsRunIsAModel) {
  TempDir d;
  const std::string run = d / "sft";
  CommandResult r = run_dseek("sft --model '" + model_ + "' --data '" + chats_ + "' --out '" + run +
                              "' --steps 4 --batch-size 2 --seq-len 64 --lr 1e-3 --save-every 2 --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  std::vector<json> m = read_metrics(run + "/metrics.jsonl");
  std::vector<double> losses;
  for (const json& j : m)
    if (j.contains("loss")) losses.push_back(j["loss"].get<double>());
  ASSERT_EQ(losses.size(), 4u) << r.out;
  for (double l : losses) EXPECT_TRUE(l > 0.5 && l < 10) << l;  // ~log(512) = 6.2 for a random model

  r = run_dseek("sft --resume '" + run + "' --steps 6 --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  int steps = 0;
  for (const json& j : read_metrics(run + "/metrics.jsonl"))
    if (j.contains("loss")) EXPECT_EQ(j["step"].get<int>(), ++steps);
  EXPECT_EQ(steps, 6);

  r = run_dseek("eval --model '" + run + "' --task arithmetic --ops +- --n 4 --max-tokens 8 --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(last_line(r.out).rfind("accuracy ", 0), 0u) << r.out;
}

// Defaults that depend on the model follow it: sft's --seq-len 256 on a model built for 128 positions, and generation
// past the context (the reliability issue's defects 4 and 10).
TEST_F(PosttrainCli, DefaultsFollowASmallContext) {
  TempDir d;
  const std::string small = d / "small";
  std::filesystem::copy(model_, small);
  json cfg = json::parse(read_file(small + "/config.json"));
  cfg["max_position_embeddings"] = 128;
  std::ofstream(small + "/config.json") << cfg.dump(2);
  CommandResult r = run_dseek("sft --model '" + small + "' --data '" + chats_ + "' --out '" + d / "run" +
                              "' --steps 2 --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("--seq-len: 128"), std::string::npos) << r.out;
  r = run_dseek("sft --resume '" + d / "run" + "' --steps 3 --threads 1");  // the resumed run keeps 128
  ASSERT_EQ(r.status, 0) << r.out;
  // an explicit --seq-len beyond the context is still an error naming the flag
  r = run_dseek("sft --model '" + small + "' --data '" + chats_ + "' --out '" + d / "run2" + "' --seq-len 256 --steps 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("--seq-len 256 exceeds max_position_embeddings 128"), std::string::npos) << r.out;
  // generation stops at the context with stop: length, and says why
  r = run_dseek("generate --model '" + small + "' --prompt-ids 1,2,3 --max-tokens 500 --ignore-eos --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("generation: 125 tokens"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stop: length (the context of 128 tokens is full)"), std::string::npos) << r.out;
  // eval's default --max-tokens 256 runs on it too (completions end at the context)
  r = run_dseek("eval --model '" + small + "' --task arithmetic --n 2 --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
}

TEST(GenerateFlags, EveryFlagIsCheckedAndNamed) {
  const std::string model = test::shared_dir() + "/conformance/v3-tiny";
  const std::vector<std::pair<std::string, std::string>> cases{
      {"--top-k -1", "--top-k: must be >= 0"},          {"--top-p -1", "--top-p: must be in (0, 1]"},
      {"--top-p 2", "--top-p: must be in (0, 1]"},       {"--top-p nan", "--top-p: must be in (0, 1]"},
      {"--temperature -1", "--temperature: must be"},     {"--temperature nan", "--temperature: must be"},
      {"--min-p 5", "--min-p: must be in [0, 1]"},        {"--repetition-penalty 0", "--repetition-penalty: must be"},
      {"--max-tokens -1", "--max-tokens: must be in [1, 2^30]"},
      {"--max-tokens 3000000000", "--max-tokens: must be in [1, 2^30]"}};
  for (const auto& [flags, message] : cases) {
    CommandResult r = run_dseek("generate --model '" + model + "' --prompt-ids 1,2,3 " + flags);
    EXPECT_EQ(r.status, 1) << flags << "\n" << r.out;
    EXPECT_NE(r.out.find(message), std::string::npos) << flags << "\n" << r.out;
  }
  // a prompt that fills the context cannot generate
  std::string ids = "1";
  for (int i = 1; i < 128; i++) ids += ",1";
  CommandResult r = run_dseek("generate --model '" + model + "' --prompt-ids " + ids);
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("the prompt has 128 tokens, but the model's context is 128"), std::string::npos) << r.out;
}

TEST_F(PosttrainCli, GrpoLogsRewardsAccuracyAndKlPerStep) {
  TempDir d;
  const std::string run = d / "grpo";
  CommandResult r = run_dseek("grpo --model '" + model_ + "' --task arithmetic --out '" + run +
                              "' --steps 2 --group-size 4 --prompts-per-step 2 --max-new-tokens 12 --seed 5 "
                              "--lr 1e-3 --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  std::vector<json> m = read_metrics(run + "/metrics.jsonl");
  int steps = 0;
  for (const json& j : m) {
    if (!j.contains("reward_mean")) continue;
    steps++;
    EXPECT_EQ(j["step"].get<int>(), steps);
    for (const char* k : {"accuracy", "kl", "reward_std", "format_rate", "clip_fraction", "completion_length", "samples_per_s"})
      EXPECT_TRUE(j.contains(k)) << k << " in " << j.dump();
    EXPECT_GE(j["kl"].get<double>(), 0.0);
    EXPECT_GE(j["accuracy"].get<double>(), 0.0);
    EXPECT_LE(j["accuracy"].get<double>(), 1.0);
    EXPECT_GT(j["completion_length"].get<double>(), 0.0);
    EXPECT_LE(j["completion_length"].get<double>(), 12.0);
  }
  EXPECT_EQ(steps, 2) << r.out;
  EXPECT_TRUE(std::filesystem::exists(run + "/reward.svg"));
  // the policy's folder samples as the rollouts did (GRPO's defaults: temperature 1, top-p 1, no top-k)
  const json gen = json::parse(read_file(run + "/final/generation_config.json"));
  EXPECT_EQ(gen["do_sample"], true) << gen.dump();
  EXPECT_EQ(gen["temperature"], 1.0) << gen.dump();
  EXPECT_EQ(gen["top_p"], 1.0) << gen.dump();
  EXPECT_EQ(gen["top_k"], 0) << gen.dump();
  // the first step samples from the unchanged policy: its KL to the reference is exactly 0
  for (const json& j : m)
    if (j.contains("reward_mean")) {
      EXPECT_EQ(j["kl"].get<double>(), 0.0) << j.dump();
      break;
    }

  r = run_dseek("eval --model '" + run + "' --task arithmetic --n 3 --max-tokens 8 --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(last_line(r.out).rfind("accuracy ", 0), 0u) << r.out;

  r = run_dseek("grpo --model '" + model_ + "' --task sudoku --out '" + d / "bad" + "' --steps 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("unknown task 'sudoku'"), std::string::npos) << r.out;
}

TEST_F(PosttrainCli, GrpoWarnsWhenEveryRewardOfAStepIsTheSame) {
  TempDir d;
  const std::string prompts = d / "prompts.jsonl";
  ASSERT_EQ(run_dseek("task export --task arithmetic --format prompts --n 8 --out '" + prompts + "'").status, 0);
  const std::string common = "' --steps 2 --group-size 2 --prompts-per-step 2 --max-new-tokens 6 --threads 1 --prompts '" + prompts + "'";
  // an untrained model never writes <answer> tags: the default checker scores every completion 0
  CommandResult r = run_dseek("grpo --model '" + model_ + "' --out '" + d / "zero" + common);
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("warning: step 1: all 4 rewards are 0, so every advantage is 0"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the default checker wants"), std::string::npos) << r.out;
  for (const json& j : read_metrics(d / "zero/metrics.jsonl"))
    if (j.contains("reward_mean")) EXPECT_EQ(j.value("rewards_constant", false), true) << j.dump();
  // a reward command: its score is the reward; the verifier's accuracy and format columns are not shown or logged
  r = run_dseek("grpo --model '" + model_ + "' --out '" + d / "cmd" + common + " --reward-cmd 'awk \"{ print NR % 2 }\"'");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("warning:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reward 0.500 (command, std 0.500)"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("| acc "), std::string::npos) << r.out;
  for (const json& j : read_metrics(d / "cmd/metrics.jsonl")) {
    EXPECT_FALSE(j.contains("accuracy")) << j.dump();
    EXPECT_FALSE(j.contains("rewards_constant")) << j.dump();
  }
  EXPECT_EQ(read_file(d / "cmd/reward.svg").find("accuracy (samples)"), std::string::npos);
}

TEST_F(PosttrainCli, HelpShowsDefaultsThatDoNotOverrideASettingsFile) {
  CommandResult r = run_dseek("grpo --help");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("--group-size INT=8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--lr FLOAT=1e-05"), std::string::npos) << r.out;
  r = run_dseek("sft --help");
  EXPECT_NE(r.out.find("--steps INT=1000"), std::string::npos) << r.out;

  TempDir d;
  const std::string run = d / "grpo", hp = d / "hp.txt";
  std::ofstream(hp) << "steps: 1\ngroup_size: 2\nprompts_per_step: 1\nmax_new_tokens: 4\n";
  r = run_dseek("grpo --model '" + model_ + "' --task arithmetic --out '" + run + "' --hparams '" + hp +
                "' --seed 1 --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  std::ifstream f(run + "/run.json");
  const json saved = json::parse(f);
  EXPECT_EQ(saved["grpo"]["group_size"].get<int>(), 2) << saved.dump();
  EXPECT_EQ(saved["grpo"]["steps"].get<int>(), 1);
  EXPECT_EQ(saved["grpo"]["seed"].get<int>(), 1);
  EXPECT_EQ(read_metrics(run + "/metrics.jsonl").size(), 1u);
}

TEST_F(PosttrainCli, DistillFineTunesAStudentOnTeacherSamples) {
  TempDir d;
  const std::string out = d / "distill";
  // a random teacher is never right: rejection sampling keeps nothing, which is a clear error
  CommandResult r = run_dseek("distill --teacher '" + model_ + "' --student '" + test::source_dir() +
                              "/configs/tiny.json' --task arithmetic --out '" + d / "rejected" +
                              "' --n-prompts 4 --samples-per-prompt 2 --max-new-tokens 8 --steps 1 --threads 1");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("no accepted completions"), std::string::npos) << r.out;

  r = run_dseek("distill --teacher '" + model_ + "' --student '" + test::source_dir() +
                "/configs/tiny.json' --task arithmetic --out '" + out +
                "' --n-prompts 4 --samples-per-prompt 2 --max-new-tokens 8 --keep-all --top-k 4 "
                "--steps 2 --batch-size 2 --seq-len 64 --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  const std::string distill_log = r.out;
  std::ifstream data(out + "/distill_data.jsonl");
  int lines = 0;
  for (std::string line; std::getline(data, line);) {
    const json j = json::parse(line);
    ASSERT_EQ(j["messages"].size(), 2u);
    EXPECT_EQ(j["messages"][1]["role"], "assistant");
    lines++;
  }
  EXPECT_EQ(lines, 8);  // 4 prompts x 2 samples, all kept
  int steps = 0;
  for (const json& j : read_metrics(out + "/student/metrics.jsonl"))
    if (j.contains("loss")) steps++;
  EXPECT_EQ(steps, 2);
  r = run_dseek("eval --model '" + out + "/student' --task arithmetic --n 2 --max-tokens 8 --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_EQ(last_line(r.out).rfind("accuracy ", 0), 0u) << r.out;
  // the KL to the teacher's top-k is logged and shown
  const json last = read_metrics(out + "/student/metrics.jsonl").back();
  EXPECT_GT(last["distill_kl"].get<double>(), 0.0) << last.dump();
  EXPECT_NE(distill_log.find(" | kl "), std::string::npos) << distill_log;

  // the same --out again is refused (it used to resume silently with the old settings)
  r = run_dseek("distill --teacher '" + model_ + "' --student '" + test::source_dir() +
                "/configs/tiny.json' --task arithmetic --out '" + out + "' --steps 4 --threads 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--out " + out + ": already holds a distillation"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--resume " + out + " continues it"), std::string::npos) << r.out;
  // --resume continues the student to a new target; other flags are the distillation's own
  r = run_dseek("distill --resume '" + out + "' --teacher '" + model_ + "' --steps 3 --threads 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--teacher: not with --resume"), std::string::npos) << r.out;
  r = run_dseek("distill --resume '" + out + "' --steps 3 --threads 1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("step 3/3"), std::string::npos) << r.out;
  EXPECT_EQ(read_metrics(out + "/student/metrics.jsonl").back()["step"], 3);
  // a target already reached says so
  r = run_dseek("distill --resume '" + out + "' --steps 2 --threads 1");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("is already at step 3 (target 2)"), std::string::npos) << r.out;
}

TEST_F(PosttrainCli, DistillRefusesAStudentWhoseTokenizerDiffersInContent) {
  TempDir d;
  // a tokenizer of the same size trained on other text: same vocab_size, other ids
  const std::string other_text = d / "other.txt";
  write_file_atomic(other_text, read_file(test::source_dir() + "/data/tinyshakespeare.txt").substr(0, 50000));
  const std::string other_tok = d / "tok", student = d / "student";
  ASSERT_EQ(run_dseek("tokenizer train --vocab-size 512 --input '" + other_text + "' --out '" + other_tok + "'").status, 0);
  ASSERT_EQ(run_dseek("init --config '" + test::source_dir() + "/configs/tiny.json' --tokenizer '" + other_tok +
                      "' --out '" + student + "'").status, 0);
  CommandResult r = run_dseek("distill --teacher '" + model_ + "' --student '" + student +
                              "' --task arithmetic --out '" + d / "out" + "' --n-prompts 2 --top-k 4 --steps 1 --threads 1");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.out.find("--student " + student + ": its tokenizer differs from the teacher's"), std::string::npos) << r.out;
  // the teacher's own tokenizer (a copy of the teacher) is accepted
  r = run_dseek("distill --teacher '" + model_ + "' --student '" + model_ + "' --task arithmetic --out '" + d / "same" +
                "' --n-prompts 2 --samples-per-prompt 1 --max-new-tokens 6 --keep-all --top-k 4 --steps 1 --batch-size 2 "
                "--seq-len 64 --threads 1");
  EXPECT_EQ(r.status, 0) << r.out;
}

// Every command on the dense architectures of the R1-Distill students, with a DeepSeek-V3 (MoE) teacher for
// distillation: init, sft, grpo, eval, generate, distill --student CONFIG.
TEST_F(PosttrainCli, DenseQwen2AndLlamaRunEveryCommand) {
  for (const char* arch : {"qwen2", "llama"}) {
    SCOPED_TRACE(arch);
    TempDir d;
    json c = {{"vocab_size", 512},       {"hidden_size", 32},       {"intermediate_size", 64},
              {"num_hidden_layers", 2},  {"num_attention_heads", 4}, {"num_key_value_heads", 2},
              {"hidden_act", "silu"},    {"rms_norm_eps", 1e-6},    {"rope_theta", 10000.0},
              {"max_position_embeddings", 256}, {"initializer_range", 0.02}, {"bos_token_id", 0}, {"eos_token_id", 1}};
    if (std::string(arch) == "qwen2") {
      c["architectures"] = {"Qwen2ForCausalLM"};
      c["model_type"] = "qwen2";
      c["tie_word_embeddings"] = true;
      c["use_sliding_window"] = false;
    } else {
      c["architectures"] = {"LlamaForCausalLM"};
      c["model_type"] = "llama";
      c["tie_word_embeddings"] = false;
      c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                           {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 64}};
    }
    const std::string cfg = d / "config.json", model = d / "init";
    std::ofstream(cfg) << c.dump(2);
    const std::vector<std::string> commands = {
        "init --config '" + cfg + "' --tokenizer '" + *dir_ / "tok" + "' --out '" + model + "' --seed 1",
        "sft --model '" + model + "' --data '" + chats_ + "' --out '" + d / "sft" +
            "' --steps 2 --batch-size 2 --seq-len 64 --threads 1",
        "grpo --model '" + d / "sft" + "' --task arithmetic --out '" + d / "grpo" +
            "' --steps 1 --group-size 2 --prompts-per-step 2 --max-new-tokens 8 --threads 1",
        "eval --model '" + d / "grpo" + "' --task arithmetic --n 2 --max-tokens 8 --threads 1",
        "generate --model '" + d / "sft" + "' --prompt '1+2' --max-tokens 4 --threads 1",
        "distill --teacher '" + model_ + "' --student '" + cfg + "' --task arithmetic --out '" + d / "distill" +
            "' --n-prompts 2 --samples-per-prompt 1 --max-new-tokens 8 --keep-all --top-k 4 --steps 2 --batch-size 2 "
            "--seq-len 64 --threads 1",
        "eval --model '" + d / "distill/student" + "' --task arithmetic --n 2 --max-tokens 8 --threads 1"};
    for (const std::string& args : commands) {
      CommandResult r = run_dseek(args);
      ASSERT_EQ(r.status, 0) << args << "\n" << r.out;
    }
    // the distilled student is the requested architecture
    const json student = json::parse(read_file(d / "distill/student/latest/config.json"));
    EXPECT_EQ(student.value("model_type", ""), arch);
  }
}

}  // namespace
}  // namespace dseek
