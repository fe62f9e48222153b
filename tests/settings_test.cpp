// Trainer settings: errors name a setting as the user gave it (the flag, or the file and key), and integers are
// read strictly (no wrapped casts of 1e300 or truncation of 2.5).
#include <gtest/gtest.h>

#include "core/fileio.h"
#include "core/json_util.h"
#include "posttrain/grpo.h"
#include "test_util.h"
#include "train/run_dir.h"
#include "train/trainer.h"

namespace dseek {
namespace {

using json = nlohmann::json;

std::string train_error(const json& j, const std::string& origin = kFlagsOrigin) {
  return test::error_of([&] { TrainConfig::from_json(j, origin); });
}

TEST(TrainerSettings, ErrorsNameTheFlagAsTyped) {
  EXPECT_EQ(train_error({{"batch_size", 0}}), "--batch-size: must be positive, got 0");
  EXPECT_EQ(train_error({{"seq_len", -3}}), "--seq-len: must be positive, got -3");
  EXPECT_EQ(train_error({{"steps", -1}}), "--steps: must be >= 0, got -1");
  EXPECT_EQ(train_error({{"schedule", "linear"}}), "--schedule: must be constant, cosine or wsd, got 'linear'");
  EXPECT_EQ(train_error({{"lr", "fast"}}), "--lr: must be a number");
}

TEST(TrainerSettings, ErrorsFromAFileNameTheFileTheKeyAndTheFlag) {
  EXPECT_EQ(train_error({{"grad_accum", 0}}, "h.json"), "h.json: setting 'grad_accum' (--grad-accum): must be positive, got 0");
}

TEST(TrainerSettings, IntegersAreReadStrictly) {
  const std::string range = "[-9223372036854775808, 9223372036854775807]";
  EXPECT_EQ(train_error({{"steps", 1e300}}), "--steps: must be a whole number in " + range + ", got 1e+300");
  EXPECT_EQ(train_error({{"batch_size", 2.5}}), "--batch-size: must be a whole number in " + range + ", got 2.5");
  EXPECT_EQ(train_error({{"steps", 9.3e18}}), "--steps: must be a whole number in " + range + ", got 9.3e+18");
  EXPECT_EQ(train_error({{"seed", -1}}), "--seed: must be a whole number in [0, 18446744073709551615], got -1");
  // whole floats in range are integers
  EXPECT_EQ(TrainConfig::from_json({{"steps", 4.0}}, kFlagsOrigin).steps, 4);
  EXPECT_EQ(TrainConfig::from_json({{"steps", -0.0}}, kFlagsOrigin).steps, 0);
}

TEST(GrpoSettings, ErrorsNameTheFlagAsTyped) {
  auto grpo_error = [](json j) {
    j["task"] = "arithmetic";
    return test::error_of([&] { GrpoConfig::from_json(j, kFlagsOrigin); });
  };
  EXPECT_EQ(grpo_error({{"group_size", 1}}),
            "--group-size: must be at least 2 (advantages compare completions of a prompt), got 1");
  EXPECT_EQ(grpo_error({{"max_new_tokens", 0}}), "--max-new-tokens: must be positive, got 0");
  EXPECT_EQ(grpo_error({{"loss_normalization", "batch"}}), "--loss-normalization: must be token or sequence, got 'batch'");
  EXPECT_EQ(grpo_error({{"epsilon", 0.3}, {"epsilon_high", 0.1}}),
            "--epsilon and --epsilon-high: need 0 <= epsilon <= epsilon_high, got 0.3 and 0.1");
}

TEST(ResumeSettings, AFixedSettingIsNamedAsTheFlag) {
  test::TempDir dir;
  write_file_atomic(dir / "run.json", json{{"train", {{"batch_size", 8}, {"steps", 10}}}}.dump());
  const std::string err = test::error_of([&] {
    RunDir(dir.str()).resume_point("train", json{{"batch_size", 4}}, {"steps"}, {});
  });
  EXPECT_EQ(err, "--batch-size: cannot be changed when resuming (the run's settings are in " + (dir / "run.json") + ")");
}

}  // namespace
}  // namespace dseek
