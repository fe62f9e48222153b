// The training objective against the PyTorch twin (tools/torch_ref, float64 reference): for v3-tiny with an
// MTP module, both balance mechanisms on, the losses and every parameter gradient, then 10 AdamW steps
// (losses, routing biases, weights). And the softmax / plain-q / group-limited variant's gradients.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "formats/safetensors.h"
#include "model/model.h"
#include "test_util.h"
#include "train/balance.h"
#include "train/graph.h"
#include "train/optimizer.h"

namespace dseek {
namespace {

using json = nlohmann::json;

struct Reference {
  SafetensorsFile f;
  ModelConfig config;
  Model model;
  json hyper;
  explicit Reference(const std::string& path) : f(SafetensorsFile::open(path)) {
    config = ModelConfig::from_json(json::parse(f.metadata().at("config")), path);
    hyper = json::parse(f.metadata().at("hyper"));
    model.config = config;
    for_each_param(config, model.w, [&](ParamRef& p) {
      Tensor t = f.get("param." + p.name);
      ASSERT_EQ(t.shape, p.shape) << p.name;
      *p.tensor = t.clone();
    });
    for (auto& m : model.w.mtp) {
      m.embed = model.w.embed;
      m.head = model.w.lm_head;
    }
    model.rope = RopeTable(config);
  }
  float scalar(const std::string& name) const { return f.get(name).f32()[0]; }
  double hp(const char* k) const { return hyper.at(k).get<double>(); }
};

std::string data_path(const char* name) { return test::source_dir() + "/tests/data/" + name; }

GraphOptions options(const Reference& r) {
  GraphOptions o;
  o.layer.aux_alpha = r.hp("alpha");
  o.mtp_lambda = r.hp("lambda");
  return o;
}

void check_gradients(Reference& r, const LossBreakdown& lb, ModelWeights& g) {
  EXPECT_NEAR(lb.main, r.scalar("loss_main"), 1e-4 * std::fabs(r.scalar("loss_main")));
  EXPECT_NEAR(lb.mtp, r.scalar("loss_mtp"), 1e-4 * std::fabs(r.scalar("loss_mtp")));
  EXPECT_NEAR(lb.aux, r.scalar("loss_aux"), 1e-4 * std::fabs(r.scalar("loss_aux")));
  EXPECT_NEAR(lb.total, r.scalar("loss_total"), 1e-4 * std::fabs(r.scalar("loss_total")));
  int compared = 0;
  for_each_param(r.config, g, [&](ParamRef& p) {
    if (p.role == ParamRole::RouterBias) return;
    Tensor want = r.f.get("grad." + p.name);
    ASSERT_EQ(want.shape, p.shape) << p.name;
    float scale = 0, diff = 0;
    for (int64_t i = 0; i < want.numel(); i++) {
      scale = std::max(scale, std::fabs(want.f32()[i]));
      diff = std::max(diff, std::fabs(want.f32()[i] - p.tensor->f32()[i]));
    }
    // relative to the tensor's largest gradient (an expert no token chose has an all-zero gradient)
    EXPECT_LE(diff, 1e-4f * scale + 1e-9f) << p.name << " (largest |grad| " << scale << ")";
    compared++;
  });
  EXPECT_GT(compared, 100);
}

TEST(TrainReference, LossesAndEveryGradientMatchPyTorch) {
  Reference r(data_path("train_reference.safetensors"));
  Tensor tokens = r.f.get("tokens");
  MicroBatch mb = MicroBatch::from_tokens(tokens.as<int32_t>(), tokens.dim(0), tokens.dim(1) - 1);
  TrainGraph graph(r.config);
  ModelWeights g = zeros_like_weights(r.config, true);
  LossBreakdown lb = graph.run(r.model.w, &g, r.model.rope, mb, options(r));
  check_gradients(r, lb, g);
}

TEST(TrainReference, SoftmaxGroupLimitedPlainQGradientsMatchPyTorch) {
  Reference r(data_path("train_reference_softmax.safetensors"));
  ASSERT_EQ(r.config.scoring_func, ScoringFunc::Softmax);
  ASSERT_EQ(r.config.q_lora_rank, 0);
  Tensor tokens = r.f.get("tokens");
  MicroBatch mb = MicroBatch::from_tokens(tokens.as<int32_t>(), tokens.dim(0), tokens.dim(1) - 1);
  TrainGraph graph(r.config);
  ModelWeights g = zeros_like_weights(r.config, true);
  LossBreakdown lb = graph.run(r.model.w, &g, r.model.rope, mb, options(r));
  check_gradients(r, lb, g);
}

TEST(TrainReference, TenAdamWStepsWithBiasUpdatesMatchPyTorch) {
  Reference r(data_path("train_reference.safetensors"));
  Tensor steps = r.f.get("steps.tokens"), want_loss = r.f.get("steps.loss_total");
  const int64_t S = steps.dim(0), B = steps.dim(1), T = steps.dim(2) - 1;
  ModelWeights g = zeros_like_weights(r.config, true);
  OptimizerConfig oc;
  oc.lr = r.hp("lr");
  oc.weight_decay = r.hp("weight_decay");
  oc.grad_clip = r.hp("max_grad_norm");
  oc.schedule = "constant";
  AdamW opt(oc, r.config, r.model.w, g);
  TrainGraph graph(r.config);
  for (int64_t s = 0; s < S; s++) {
    opt.zero_grads();
    MicroBatch mb = MicroBatch::from_tokens(steps.as<int32_t>() + s * B * (T + 1), B, T);
    LossBreakdown lb = graph.run(r.model.w, &g, r.model.rope, mb, options(r));
    EXPECT_NEAR(lb.total, want_loss.f32()[s], 1e-3 * std::fabs(want_loss.f32()[s])) << "step " << s;
    opt.step(oc.lr);
    update_routing_bias(r.model.w, lb.load, r.hp("gamma"));
  }
  std::vector<Tensor*> biases = routing_biases(r.model.w);
  ASSERT_EQ(biases.size(), 3u);
  for (size_t l = 0; l < biases.size(); l++) {
    Tensor want = r.f.get("final_bias." + std::to_string(l + 1));
    for (int64_t e = 0; e < want.numel(); e++) EXPECT_EQ(biases[l]->f32()[e], want.f32()[e]) << "layer " << l + 1 << " expert " << e;
  }
  int compared = 0;
  for_each_param(r.config, r.model.w, [&](ParamRef& p) {
    if (!r.f.contains("final." + p.name)) return;
    Tensor want = r.f.get("final." + p.name);
    float diff = 0;
    for (int64_t i = 0; i < want.numel(); i++) diff = std::max(diff, std::fabs(want.f32()[i] - p.tensor->f32()[i]));
    EXPECT_LT(diff, 1e-4f) << p.name;
    compared++;
  });
  EXPECT_GE(compared, 8);
}

}  // namespace
}  // namespace dseek
