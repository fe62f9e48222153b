// Training in FP8 and FP16 as users run it (`dseek train --precision fp8|fp16`): FP8 learns and tracks BF16,
// FP16's dynamic loss scale skips and recovers on an injected overflow (a skipped step leaves the weights
// unchanged), low-precision runs and BF16 optimizer moments resume exactly, bad settings are named.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <utility>
#include <nlohmann/json.hpp>

#include "core/fileio.h"
#include "formats/safetensors.h"
#include "test_util.h"
#include "train_util.h"

namespace dseek {
namespace {

using json = nlohmann::json;

const char* kFlags = " --batch-size 4 --seq-len 32 --lr 3e-3 --seed 3 --threads 2 --log-every 100";

struct LowpTrain : ::testing::Test {
  test::TempDir d;
  std::string data = test::make_token_data(d), cfg = test::source_dir() + "/configs/tiny.json";
  test::CommandResult train(const std::string& out, const std::string& flags) {
    return test::run_dseek("train --config " + cfg + " --data " + data + " --out " + (d / out) + flags + kFlags);
  }
};

// Sets an environment variable for the commands a test starts, removed when it ends.
struct ScopedEnv {
  const char* name;
  ScopedEnv(const char* n, const std::string& v) : name(n) { setenv(n, v.c_str(), 1); }
  ~ScopedEnv() { unsetenv(name); }
};

TEST_F(LowpTrain, Fp8LearnsAndTracksBf16) {
  ASSERT_EQ(train("bf16", " --steps 40 --precision bf16").status, 0);
  auto r = train("fp8", " --steps 40 --precision fp8");
  ASSERT_EQ(r.status, 0) << r.out;
  const auto a = test::run_metrics(d / "bf16"), b = test::run_metrics(d / "fp8");
  ASSERT_EQ(b.size(), 40u);
  // it learns: the loss of the last 5 steps is well below the first step's (a flipped gradient would climb)
  double tail_a = 0, tail_b = 0;
  for (size_t i = 35; i < 40; i++) tail_a += a[i]["loss"].get<double>() / 5, tail_b += b[i]["loss"].get<double>() / 5;
  EXPECT_LT(tail_b, b[0]["loss"].get<double>() - 1.0);
  EXPECT_NEAR(tail_b, tail_a, 0.02 * tail_a);
  // the same first step within the quantisation error, and the operands' losses are reported
  EXPECT_NEAR(b[0]["loss"].get<double>(), a[0]["loss"].get<double>(), 0.01);
  for (const char* k : {"act_underflow", "act_saturated", "grad_underflow", "grad_saturated"}) EXPECT_TRUE(b[5].contains(k)) << k;
  EXPECT_FALSE(b[5].contains("loss_scale"));
}

TEST_F(LowpTrain, Fp16LossScaleSkipsAndRecoversOnInjectedOverflow) {
  // steps 3 and 4 (0-based 2, 3) overflow: the scale halves twice and those steps are skipped; after 3 clean
  // steps (--loss-scale-window 3) it doubles: 65536 65536 | 32768 16384 | 16384 16384 32768 | 32768 32768 65536
  {
    ScopedEnv env("DSEEK_TEST_OVERFLOW_STEPS", "2,3");
    auto r = train("fp16", " --steps 10 --precision fp16 --loss-scale-window 3");
    ASSERT_EQ(r.status, 0) << r.out;
  }
  const auto m = test::run_metrics(d / "fp16");
  ASSERT_EQ(m.size(), 10u);
  const double want[] = {65536, 65536, 32768, 16384, 16384, 16384, 32768, 32768, 32768, 65536};
  for (size_t i = 0; i < 10; i++) {
    EXPECT_EQ(m[i]["loss_scale"].get<double>(), want[i]) << "step " << i + 1;
    EXPECT_EQ(m[i].contains("step_skipped"), i == 2 || i == 3) << "step " << i + 1;
    EXPECT_EQ(m[i]["skipped_steps"].get<int>(), i < 2 ? 0 : i == 2 ? 1 : 2);
    EXPECT_TRUE(std::isfinite(m[i]["loss"].get<double>()));
  }
  EXPECT_LT(m[9]["loss"].get<double>(), m[0]["loss"].get<double>());  // it recovered and learns
  // a skipped step leaves the weights as they were: 3 steps with the last skipped == 2 steps
  {
    ScopedEnv env("DSEEK_TEST_OVERFLOW_STEPS", "2");
    ASSERT_EQ(train("skip3", " --steps 3 --precision fp16").status, 0);
  }
  ASSERT_EQ(train("two", " --steps 2 --precision fp16").status, 0);
  const auto a = SafetensorsFile::open(d / "skip3/final/model.safetensors"), b = SafetensorsFile::open(d / "two/final/model.safetensors");
  ASSERT_EQ(a.names(), b.names());
  for (const std::string& n : a.names()) {
    const Tensor x = a.get(n), y = b.get(n);
    ASSERT_EQ(x.nbytes(), y.nbytes()) << n;
    EXPECT_EQ(std::memcmp(x.data, y.data, x.nbytes()), 0) << n;
  }
}

TEST_F(LowpTrain, LowPrecisionRunsAndBf16MomentsResumeExactly) {
  for (const auto& [tag, p] : {std::pair<std::string, std::string>{"fp8", "fp8 --moments bf16"}, {"fp16", "fp16 --loss-scale-window 2"}}) {
    SCOPED_TRACE(p);
    // fp16: an overflow at step 2, so the scale changes before and after the checkpoint at step 3
    ScopedEnv env("DSEEK_TEST_OVERFLOW_STEPS", tag == "fp16" ? "1" : "");
    ASSERT_EQ(train(tag + "full", " --steps 6 --precision " + p).status, 0);
    ASSERT_EQ(train(tag + "part", " --steps 3 --precision " + p).status, 0);
    auto r = test::run_dseek("train --resume " + (d / (tag + "part")) + " --steps 6");
    ASSERT_EQ(r.status, 0) << r.out;
    const auto a = test::run_metrics(d / (tag + "full")), b = test::run_metrics(d / (tag + "part"));
    ASSERT_EQ(a.size(), 6u);
    ASSERT_EQ(b.size(), 6u);
    for (size_t i = 0; i < 6; i++) {
      EXPECT_EQ(b[i]["loss"].get<double>(), a[i]["loss"].get<double>()) << "step " << i + 1;
      EXPECT_EQ(b[i].value("loss_scale", 0.0), a[i].value("loss_scale", 0.0)) << "step " << i + 1;
    }
  }
  // the moments are stored in BF16 (half the optimizer state)
  const auto opt = SafetensorsFile::open(d / "fp8full/latest/optimizer.safetensors");
  int moments = 0;
  for (const std::string& n : opt.names())
    if (n.rfind("exp_avg", 0) == 0) {
      moments++;
      EXPECT_EQ(opt.info(n).first, DType::BF16) << n;
    }
  EXPECT_GT(moments, 10);
}

TEST_F(LowpTrain, BadPrecisionSettingsAreNamed) {
  struct Case { const char* flags; const char* message; };
  for (Case c : {Case{" --precision fp9", "--precision: must be f32, bf16, fp8, fp16 or auto, got 'fp9'"},
                 Case{" --precision fp8 --fp8-scales block", "--fp8-scales: must be tile or tensor, got 'block'"},
                 Case{" --moments f8", "--moments: must be f32 or bf16, got 'f8'"},
                 Case{" --precision fp16 --loss-scale -1", "--loss-scale: must be a number >= 0"},
                 Case{" --precision fp16 --loss-scale-window 0", "--loss-scale-window: must be at least 1"}}) {
    auto r = train("bad", std::string(" --steps 1") + c.flags);
    EXPECT_NE(r.status, 0) << c.flags;
    EXPECT_NE(r.out.find(c.message), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace dseek
