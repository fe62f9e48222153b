// Trainer: AdamW against a hand computation, schedules, settings files, exact resumption, corrupted and
// half-written checkpoints, run folders usable as model folders.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/settings.h"
#include "core/error.h"
#include "core/fileio.h"
#include "core/rng.h"
#include "kernels/matmul.h"
#include "model/model.h"
#include "test_util.h"
#include "train_util.h"
#include "train/data.h"
#include "train/optimizer.h"
#include "train/trainer.h"

namespace dseek {
namespace {

using json = nlohmann::json;

std::string make_data(const test::TempDir& d) { return test::make_token_data(d); }
std::vector<json> metrics(const std::string& run) { return test::run_metrics(run); }

TEST(Optimizer, AdamWStepMatchesHandComputation) {
  ModelConfig c = ModelConfig::load(test::source_dir() + "/configs/tiny.json");
  Model m = Model::random(c, 1);
  ModelWeights g = zeros_like_weights(c, true);
  OptimizerConfig oc;
  oc.lr = 0.1;
  oc.weight_decay = 0.5;
  oc.grad_clip = 0;
  AdamW opt(oc, c, m.w, g);
  float& p = m.w.layers[0].mla.o_proj.weight.f32()[3];
  float& n = m.w.layers[0].input_layernorm.f32()[2];
  const float p0 = p, n0 = n;
  g.layers[0].mla.o_proj.weight.f32()[3] = 0.2f;
  g.layers[0].input_layernorm.f32()[2] = -0.4f;
  opt.step(0.1);
  // t = 1: m = 0.1 g, v = 0.05 g^2, m_hat = g, v_hat = g^2 -> update = lr * g / (|g| + eps)
  EXPECT_NEAR(p, p0 * (1 - 0.1 * 0.5) - 0.1 * 0.2 / (0.2 + 1e-8), 1e-6);
  EXPECT_NEAR(n, n0 + 0.1, 1e-6);  // no decay on norms
  opt.step(0.1);  // t = 2, same gradient
  const double m2 = 0.9 * 0.02 + 0.1 * 0.2, v2 = 0.95 * 0.05 * 0.04 + 0.05 * 0.04;
  const double p1 = p0 * 0.95 - 0.1;
  EXPECT_NEAR(p, p1 * 0.95 - 0.1 * (m2 / (1 - 0.81)) / (std::sqrt(v2 / (1 - 0.9025)) + 1e-8), 1e-6);
}

TEST(Optimizer, ClippingScalesByGlobalNorm) {
  ModelConfig c = ModelConfig::load(test::source_dir() + "/configs/tiny.json");
  Model m = Model::random(c, 1);
  ModelWeights g = zeros_like_weights(c, true);
  OptimizerConfig oc;
  oc.grad_clip = 1.0;
  AdamW opt(oc, c, m.w, g);
  g.norm.f32()[0] = 3.0f;
  g.layers[1].mla.kv_b_proj.weight.f32()[0] = 4.0f;
  EXPECT_NEAR(opt.grad_norm(), 5.0, 1e-9);
  EXPECT_NEAR(opt.step(1e-3).grad_norm, 5.0, 1e-9);
}

TEST(Optimizer, Schedules) {
  OptimizerConfig o;
  o.lr = 1.0;
  o.min_lr_ratio = 0.1;
  o.warmup = 10;
  o.schedule = "cosine";
  EXPECT_NEAR(lr_at(o, 0, 110), 0.1, 1e-12);
  EXPECT_NEAR(lr_at(o, 9, 110), 1.0, 1e-12);
  EXPECT_NEAR(lr_at(o, 10, 110), 1.0, 1e-12);
  EXPECT_NEAR(lr_at(o, 60, 110), 0.55, 1e-12);
  EXPECT_NEAR(lr_at(o, 110, 110), 0.1, 1e-12);
  o.schedule = "wsd";
  o.decay_fraction = 0.2;
  EXPECT_NEAR(lr_at(o, 50, 110), 1.0, 1e-12);
  EXPECT_NEAR(lr_at(o, 109, 110), 0.1, 1e-12);
  o.schedule = "constant";
  EXPECT_NEAR(lr_at(o, 80, 110), 1.0, 1e-12);
}

TEST(Settings, JsonAndKeyValueFiles) {
  test::TempDir d;
  write_file_atomic(d / "a.yaml", "# comment\nlr: 3e-4\nbatch-size: 16\nschedule: cosine\nprecision: 'bf16'\n");
  json j = cli::read_settings_file(d / "a.yaml");
  EXPECT_DOUBLE_EQ(j["lr"].get<double>(), 3e-4);
  EXPECT_EQ(j["batch_size"].get<int>(), 16);
  EXPECT_EQ(j["schedule"], "cosine");
  EXPECT_EQ(j["precision"], "bf16");
  TrainConfig c = TrainConfig::from_json(j, "a.yaml");
  EXPECT_EQ(c.batch_size, 16);
  write_file_atomic(d / "b.yaml", "lr 3\n");
  EXPECT_THROW(cli::read_settings_file(d / "b.yaml"), Error);
  EXPECT_THROW(TrainConfig::from_json(json{{"learning_rate", 1}}, "x"), Error);
  EXPECT_THROW(TrainConfig::from_json(json{{"precision", "fp4"}}, "x"), Error);
  // auto resolves to what the CPU runs natively; the run's saved settings hold the resolved value
  EXPECT_EQ(TrainConfig::from_json(json{{"precision", "auto"}}, "x").mixed.precision, native_bf16_products() ? TrainPrecision::BF16 : TrainPrecision::F32);
  EXPECT_EQ(TrainConfig::from_json(json{{"precision", "bf16"}}, "x").mixed.precision, TrainPrecision::BF16);
}

const char* kTrainFlags = " --batch-size 4 --seq-len 16 --lr 3e-3 --seed 3 --threads 2";

TEST(Trainer, ResumeReproducesTheUninterruptedRunExactly) {
  test::TempDir d;
  const std::string data = make_data(d), cfg = test::source_dir() + "/configs/tiny.json";
  auto r1 = test::run_dseek("train --config " + cfg + " --data " + data + " --out " + (d / "full") + " --steps 8 --save-every 4" + kTrainFlags);
  ASSERT_EQ(r1.status, 0) << r1.out;
  auto r2 = test::run_dseek("train --config " + cfg + " --data " + data + " --out " + (d / "part") + " --steps 5 --save-every 3" + kTrainFlags);
  ASSERT_EQ(r2.status, 0) << r2.out;
  // the interrupted run's metrics past its checkpoint (step 5 > 3 is logged but not saved) are discarded
  std::filesystem::remove_all(d / "part/checkpoints/step-00000005");
  write_file_atomic(d / "part/latest", "checkpoints/step-00000003\n");
  auto r3 = test::run_dseek("train --resume " + (d / "part") + " --steps 8");
  ASSERT_EQ(r3.status, 0) << r3.out;
  auto a = metrics(d / "full"), b = metrics(d / "part");
  ASSERT_EQ(a.size(), 8u);
  ASSERT_EQ(b.size(), 8u);
  for (size_t i = 0; i < 8; i++) {
    EXPECT_EQ(b[i]["step"], a[i]["step"]);
    EXPECT_EQ(b[i]["loss"].get<double>(), a[i]["loss"].get<double>()) << "step " << i + 1;
    EXPECT_EQ(b[i]["mtp_loss"].get<double>(), a[i]["mtp_loss"].get<double>()) << "step " << i + 1;
  }
  EXPECT_LT(a.back()["loss"].get<double>(), a.front()["loss"].get<double>());
  // the run folder works as a model folder
  auto g = test::run_dseek("generate --model " + (d / "full") + " --prompt-ids 2,3,4 -n 4 --temperature 0");
  EXPECT_EQ(g.status, 0) << g.out;
  EXPECT_TRUE(file_exists(d / "full/loss.svg"));
  EXPECT_TRUE(file_exists(d / "full/expert_load.svg"));
  // a resume whose target is already reached says so and changes nothing
  auto r4 = test::run_dseek("train --resume " + (d / "full") + " --steps 6");
  EXPECT_EQ(r4.status, 0) << r4.out;
  EXPECT_NE(r4.out.find("already at step 8 (target 6)"), std::string::npos) << r4.out;
  EXPECT_EQ(metrics(d / "full").size(), 8u);
}

TEST(Trainer, CorruptedOrHalfWrittenCheckpointGivesClearError) {
  test::TempDir d;
  const std::string data = make_data(d), cfg = test::source_dir() + "/configs/tiny.json";
  auto r = test::run_dseek("train --config " + cfg + " --data " + data + " --out " + (d / "run") + " --steps 4 --save-every 2" + kTrainFlags);
  ASSERT_EQ(r.status, 0) << r.out;
  // a half-written checkpoint (interrupted save) is never named by `latest`: resuming uses the last complete one
  make_dirs(d / "run/checkpoints/step-00000006.tmp");
  write_file_atomic(d / "run/checkpoints/step-00000006.tmp/model.safetensors", "garbage");
  auto ok = test::run_dseek("train --resume " + (d / "run") + " --steps 5");
  EXPECT_EQ(ok.status, 0) << ok.out;
  // corruption of the named checkpoint
  const std::string model = d / "run/checkpoints/step-00000005/model.safetensors";
  std::string bytes = read_file(model);
  write_file_atomic(model, bytes.substr(0, bytes.size() - 100));
  auto bad = test::run_dseek("train --resume " + (d / "run") + " --steps 6");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("model.safetensors"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("dseek: error:"), std::string::npos) << bad.out;
  write_file_atomic(d / "run/checkpoints/step-00000005/trainer_state.json", "{\"step\": ");
  write_file_atomic(model, bytes);
  bad = test::run_dseek("train --resume " + (d / "run") + " --steps 6");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("trainer_state.json"), std::string::npos) << bad.out;
  write_file_atomic(d / "run/latest", "checkpoints/step-00000099\n");
  bad = test::run_dseek("train --resume " + (d / "run") + " --steps 6");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("step-00000099"), std::string::npos) << bad.out;
}

TEST(Trainer, RefusesToOverwriteARunAndValidatesFlags) {
  test::TempDir d;
  const std::string data = make_data(d), cfg = test::source_dir() + "/configs/tiny.json";
  ASSERT_EQ(test::run_dseek("train --config " + cfg + " --data " + data + " --out " + (d / "run") + " --steps 1" + kTrainFlags).status, 0);
  auto again = test::run_dseek("train --config " + cfg + " --data " + data + " --out " + (d / "run") + " --steps 1" + kTrainFlags);
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.out.find("--resume"), std::string::npos) << again.out;
  auto bad = test::run_dseek("train --config " + cfg + " --data " + data + " --out " + (d / "run2") + " --steps 1 --precision fp4");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find("precision"), std::string::npos) << bad.out;
  auto nodata = test::run_dseek("train --config " + cfg + " --data " + (d / "nothing") + " --out " + (d / "run3") + " --steps 1");
  EXPECT_EQ(nodata.status, 1);
  EXPECT_NE(nodata.out.find("meta.json"), std::string::npos) << nodata.out;
  auto change = test::run_dseek("train --resume " + (d / "run") + " --steps 2 --lr 1");
  EXPECT_EQ(change.status, 1);
  EXPECT_NE(change.out.find("--lr"), std::string::npos) << change.out;
}

}  // namespace
}  // namespace dseek
