// Training the dense architectures (Qwen2, Llama) and the one-library property:
//  - the training forward gives the inference forward's logits on the same weights, for every architecture;
//  - losses, every gradient and 3 AdamW steps against the PyTorch twin (tools/torch_ref/make_dense_train_reference.py,
//    float64): Qwen2 with tied head and q/k/v biases, Llama with untied head and llama3 RoPE;
//  - finite differences for each new backward: rotate-half RoPE, grouped-query attention, a GQA decoder layer with
//    q/k/v/o and MLP biases, and the whole model with a tied head.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/fileio.h"
#include "core/rng.h"
#include "formats/safetensors.h"
#include "inference/forward.h"
#include "kernels/attention.h"
#include "model/layers/decoder_layer.h"
#include "model/model.h"
#include "model/rope.h"
#include "numeric_util.h"
#include "test_util.h"
#include "train/graph.h"
#include "train/optimizer.h"

namespace dseek {
namespace {

using json = nlohmann::json;
using test::dot;
using test::max_abs_diff;
using test::randn;

// float32 forward passes: steps below 3e-3 drown in rounding on these layers (1e-3 misses one bias by 4%)
constexpr float kFdStep = 3e-3f;
void check_grad(std::vector<float>& v, const std::vector<float>& analytic, const std::function<double()>& loss,
                const std::string& what, int samples = 16, uint64_t seed = 7) {
  test::check_grad(v, analytic, loss, what, kFdStep, 3e-2, 5e-4, samples, seed);
}

std::string dense_case(const char* name) { return test::source_dir() + "/tests/data/dense/" + name; }
std::string data_path(const char* name) { return test::source_dir() + "/tests/data/" + name; }

// ---------------------------------------------------------------------------------------------------------
// The training forward and the inference forward are one library: same logits on the same weights.

void train_logits_equal_inference(const std::string& dir) {
  Model m = Model::load(dir);
  SafetensorsFile expected = SafetensorsFile::open(dir + "/expected.safetensors");
  Tensor tokens = expected.get("tokens");
  const int64_t B = tokens.dim(0), T = tokens.dim(1), V = m.config.vocab_size;
  // inference: the engine's batched prefill through the KV cache
  Forward fwd(m, ForwardOptions{});
  std::vector<KVCache> caches;
  std::vector<SeqChunk> chunks;
  for (int64_t b = 0; b < B; b++) caches.push_back(fwd.new_cache(T));
  for (int64_t b = 0; b < B; b++) chunks.push_back({&caches[size_t(b)], tokens.as<int32_t>() + b * T, T});
  std::vector<float> infer(size_t(B * T * V));
  fwd.run(chunks, true, infer.data());
  // training: the graph's forward (activations saved for a backward), logits of its fused head
  MicroBatch mb;
  mb.B = B;
  mb.T = T;
  mb.inputs.assign(tokens.as<int32_t>(), tokens.as<int32_t>() + B * T);
  mb.targets.assign(size_t(B * T), 0);
  mb.shape = TrainShape::dense(B, T);
  std::vector<float> train;
  GraphOptions o;
  o.use_mtp = false;
  o.logits_out = &train;
  TrainGraph graph(m.config);
  ModelWeights g = zeros_like_weights(m.config, false);
  graph.run(m.w, &g, m.rope, mb, o);
  ASSERT_EQ(train.size(), infer.size());
  EXPECT_LT(max_abs_diff(train.data(), infer.data(), infer.size()), 2e-5f);
  // and both are the reference's logits
  EXPECT_LT(max_abs_diff(train.data(), expected.get("logits").f32(), infer.size()), 1e-4f);
}

TEST(TrainEqualsInference, DeepSeekV3) { train_logits_equal_inference(test::shared_dir() + "/conformance/v3-tiny"); }
TEST(TrainEqualsInference, Qwen2TiedWithBiases) { train_logits_equal_inference(test::shared_dir() + "/conformance/qwen2-tiny"); }
TEST(TrainEqualsInference, LlamaUntiedLlama3Rope) { train_logits_equal_inference(dense_case("llama3-rope")); }
TEST(TrainEqualsInference, LlamaMhaWithAllBiases) { train_logits_equal_inference(dense_case("llama-bias-mha")); }

// ---------------------------------------------------------------------------------------------------------
// Against the PyTorch twin.

struct DenseReference {
  SafetensorsFile f;
  Model model;
  json hyper;
  explicit DenseReference(const std::string& path) : f(SafetensorsFile::open(path)) {
    model.config = ModelConfig::from_json(json::parse(f.metadata().at("config")), path);
    hyper = json::parse(f.metadata().at("hyper"));
    for_each_param(model.config, model.w, [&](ParamRef& p) {
      Tensor t = f.get("param." + p.name);
      ASSERT_EQ(t.shape, p.shape) << p.name;
      *p.tensor = t.clone();
      if (p.linear) p.linear->weight = *p.tensor;
    }, ParamOptions{false});
    bind_shared_tensors(model.config, model.w);
    model.rope = RopeTable(model.config);
  }
  MicroBatch batch(const std::string& prefix, int64_t step = 0) const {
    Tensor in = f.get(prefix + "inputs"), tg = f.get(prefix + "targets");
    const int64_t B = in.dim(in.ndim() - 2), T = in.dim(in.ndim() - 1);
    MicroBatch mb;
    mb.B = B;
    mb.T = T;
    mb.inputs.assign(in.as<int32_t>() + step * B * T, in.as<int32_t>() + (step + 1) * B * T);
    mb.targets.assign(tg.as<int32_t>() + step * B * T, tg.as<int32_t>() + (step + 1) * B * T);
    mb.shape = TrainShape::dense(B, T);
    return mb;
  }
  double hp(const char* k) const { return hyper.at(k).get<double>(); }
};

void reference_gradients(const char* file) {
  DenseReference r(data_path(file));
  MicroBatch mb = r.batch("");
  TrainGraph graph(r.model.config);
  ModelWeights g = zeros_like_weights(r.model.config, false);
  std::vector<float> logits;
  GraphOptions o;
  o.use_mtp = false;
  o.logits_out = &logits;
  LossBreakdown lb = graph.run(r.model.w, &g, r.model.rope, mb, o);
  const float want = r.f.get("loss_total").f32()[0];
  EXPECT_NEAR(lb.total, want, 1e-5 * std::fabs(want));
  EXPECT_EQ(lb.tokens, int64_t(r.f.get("count").as<int32_t>()[0]));
  Tensor ref_logits = r.f.get("logits");
  EXPECT_LT(max_abs_diff(logits.data(), ref_logits.f32(), logits.size()), 1e-4f);
  int compared = 0;
  for_each_param(r.model.config, g, [&](ParamRef& p) {
    Tensor want_g = r.f.get("grad." + p.name);
    ASSERT_EQ(want_g.shape, p.shape) << p.name;
    float scale = 0, diff = 0;
    for (int64_t i = 0; i < want_g.numel(); i++) {
      scale = std::max(scale, std::fabs(want_g.f32()[i]));
      diff = std::max(diff, std::fabs(want_g.f32()[i] - p.tensor->f32()[i]));
    }
    EXPECT_GT(scale, 0.0f) << p.name;
    EXPECT_LE(diff, 1e-4f * scale + 1e-9f) << p.name << " (largest |grad| " << scale << ")";
    compared++;
  }, ParamOptions{false});
  EXPECT_GT(compared, 20);
}

void reference_adamw_steps(const char* file) {
  DenseReference r(data_path(file));
  ModelWeights g = zeros_like_weights(r.model.config, false);
  OptimizerConfig oc;
  oc.lr = r.hp("lr");
  oc.weight_decay = r.hp("weight_decay");
  oc.grad_clip = r.hp("max_grad_norm");
  oc.beta1 = r.hyper.at("betas")[0].get<double>();
  oc.beta2 = r.hyper.at("betas")[1].get<double>();
  oc.eps = r.hp("eps");
  oc.schedule = "constant";
  AdamW opt(oc, r.model.config, r.model.w, g);
  TrainGraph graph(r.model.config);
  GraphOptions o;
  o.use_mtp = false;
  Tensor losses = r.f.get("steps.loss_total"), norms = r.f.get("steps.grad_norm");
  for (int64_t s = 0; s < losses.numel(); s++) {
    opt.zero_grads();
    LossBreakdown lb = graph.run(r.model.w, &g, r.model.rope, r.batch("steps.", s), o);
    EXPECT_NEAR(lb.total, losses.f32()[s], 1e-5 * std::fabs(losses.f32()[s])) << "step " << s;
    EXPECT_NEAR(opt.grad_norm(), norms.f32()[s], 1e-4 * norms.f32()[s]) << "step " << s;
    opt.step(oc.lr);
  }
  for_each_param(r.model.config, r.model.w, [&](ParamRef& p) {
    Tensor want = r.f.get("final." + p.name), start = r.f.get("param." + p.name);
    float moved = 0, diff = 0;
    for (int64_t i = 0; i < want.numel(); i++) {
      moved = std::max(moved, std::fabs(want.f32()[i] - start.f32()[i]));
      diff = std::max(diff, std::fabs(want.f32()[i] - p.tensor->f32()[i]));
    }
    // 3 steps of lr 1e-3 move a weight by up to 3e-3; match to 1% of that
    EXPECT_LE(diff, 1e-2f * moved + 1e-7f) << p.name << " (moved " << moved << ")";
  }, ParamOptions{false});
}

TEST(DenseTrainReference, Qwen2LossLogitsAndEveryGradient) { reference_gradients("dense_train_reference_qwen2.safetensors"); }
TEST(DenseTrainReference, LlamaLossLogitsAndEveryGradient) { reference_gradients("dense_train_reference_llama.safetensors"); }
TEST(DenseTrainReference, Qwen2ThreeAdamWSteps) { reference_adamw_steps("dense_train_reference_qwen2.safetensors"); }
TEST(DenseTrainReference, LlamaThreeAdamWSteps) { reference_adamw_steps("dense_train_reference_llama.safetensors"); }

// ---------------------------------------------------------------------------------------------------------
// Finite differences.

TEST(DenseGradCheck, RotateHalfRopeWithLlama3Scaling) {
  ModelConfig c = ModelConfig::load(dense_case("llama3-rope"));
  ASSERT_EQ(c.rope_layout(), RopeLayout::Half);
  RopeTable rope(c);
  rope.prepare(200);
  const int64_t R = 6, H = 3, d = c.qk_head_dim(), ld = H * d + 3;
  std::vector<int32_t> pos{0, 3, 17, 40, 90, 199};
  auto x = randn(size_t(R * ld), 1), proj = randn(size_t(R * ld), 2);
  auto loss = [&] {
    std::vector<float> y = x;
    rope_apply(y.data(), R, ld, 3, H, d, pos.data(), rope);
    return dot(y, proj);
  };
  std::vector<float> dx = proj;
  rope_apply(dx.data(), R, ld, 3, H, d, pos.data(), rope, /*inverse=*/true);
  check_grad(x, dx, loss, "rotate-half rope dx", 24);
}

TEST(DenseGradCheck, GroupedQueryAttention) {
  AttentionDims a;
  a.heads = 4;
  a.kv_heads = 2;
  a.Tq = a.Tk = 11;
  a.dqk = a.dv = 8;
  a.scale = 0.35f;
  const size_t q = size_t(4 * 11 * 8), kv = size_t(2 * 11 * 8);
  auto Q = randn(q, 1), K = randn(kv, 2), V = randn(kv, 3), proj = randn(size_t(11 * 32), 4);
  std::vector<float> O(11 * 32), lse(44);
  auto loss = [&] {
    attention_forward(a, Q.data(), K.data(), V.data(), O.data(), 32, lse.data());
    return dot(O, proj);
  };
  loss();
  std::vector<float> dQ(q), dK(kv), dV(kv);
  attention_backward(a, Q.data(), K.data(), V.data(), O.data(), 32, proj.data(), 32, lse.data(), dQ.data(), dK.data(),
                     dV.data());
  check_grad(Q, dQ, loss, "gqa dQ", 24);
  check_grad(K, dK, loss, "gqa dK (two query heads per kv head)", 24);
  check_grad(V, dV, loss, "gqa dV", 24);
}

// Random weights with non-trivial norms and biases, at a scale where attention is not uniform.
Model random_dense(const std::string& dir, uint64_t seed) {
  json j = json::parse(read_file(dir + "/config.json"));
  j["initializer_range"] = 0.2;
  ModelConfig c = ModelConfig::from_json(j, dir);
  Model m = Model::random(c, seed, DType::F32, false);
  for_each_param(c, m.w, [&](ParamRef& p) {
    if (p.role != ParamRole::Norm && p.role != ParamRole::Bias) return;
    auto v = randn(size_t(p.tensor->numel()), seed + 99, 0.2f);
    for (int64_t i = 0; i < p.tensor->numel(); i++) p.tensor->f32()[i] += v[size_t(i)];
  }, ParamOptions{false});
  return m;
}

// Every tensor of a decoder layer (q/k/v/o, their biases, norms, MLP with biases) and its input.
void dense_layer_case(const char* name) {
  Model m = random_dense(dense_case(name), 5);
  const ModelConfig& c = m.config;
  const LayerWeights& L = m.w.layers[1];
  TrainShape s = TrainShape::dense(2, 9);
  for (auto& p : s.positions) p += 50;  // past the original context of the scaled RoPE
  m.rope.prepare(64);
  TrainOptions o;
  auto x0 = randn(size_t(18 * c.hidden_size), 3), proj = randn(size_t(18 * c.hidden_size), 4);
  LayerCache cache;
  {
    std::vector<float> x = x0;
    layer_forward(c, L, m.rope, s, o, x.data(), cache);
  }
  auto loss = [&] {
    std::vector<float> x = x0;
    LayerCache lc;
    layer_forward(c, L, m.rope, s, o, x.data(), lc);
    return dot(x, proj);
  };
  ModelWeights g = zeros_like_weights(c, false);
  std::vector<float> dx = proj;
  layer_backward(c, L, g.layers[1], m.rope, s, o, cache, dx.data());
  check_grad(x0, dx, loss, "layer dx");
  std::vector<Tensor*> params, grads;
  std::vector<std::string> names;
  for_each_param(c, m.w, [&](ParamRef& p) {
    if (p.name.find("layers.1.") == std::string::npos) return;
    params.push_back(p.tensor);
    names.push_back(p.name);
  }, ParamOptions{false});
  for_each_param(c, g, [&](ParamRef& p) { if (p.name.find("layers.1.") != std::string::npos) grads.push_back(p.tensor); },
                 ParamOptions{false});
  ASSERT_EQ(params.size(), grads.size());
  int biases = 0;
  for (size_t i = 0; i < params.size(); i++) {
    EXPECT_TRUE(test::check_tensor_grad(*params[i], *grads[i], loss, names[i], kFdStep, 3e-2, 5e-4, 6, 100 + i))
        << names[i] << ": zero gradient";
    biases += names[i].find(".bias") != std::string::npos;
  }
  EXPECT_GE(biases, 3) << "the case should exercise biases";
}

TEST(DenseGradCheck, Qwen2LayerWithQkvBiasesGqa) { dense_layer_case("qwen2-untied"); }
TEST(DenseGradCheck, LlamaLayerWithAllBiasesYarnRope) {
  dense_layer_case("llama-bias-mha");
}

// The whole model with a tied head: the embedding's gradient sums the lookup's and the head's.
TEST(DenseGradCheck, WholeModelTiedHead) {
  Model m = random_dense(test::shared_dir() + "/conformance/qwen2-tiny", 8);
  const ModelConfig& c = m.config;
  ASSERT_TRUE(c.tie_word_embeddings);
  Rng r(3);
  std::vector<int32_t> tokens(2 * 11);
  for (auto& t : tokens) t = int32_t(r.below(uint64_t(c.vocab_size)));
  MicroBatch mb = MicroBatch::from_tokens(tokens.data(), 2, 10);
  GraphOptions o;
  o.use_mtp = false;
  TrainGraph graph(c);
  ModelWeights g = zeros_like_weights(c, false);
  graph.run(m.w, &g, m.rope, mb, o);
  auto loss = [&] {
    TrainGraph g2(c);
    return g2.run(m.w, nullptr, m.rope, mb, o).total;
  };
  std::vector<Tensor*> params, grads;
  std::vector<std::string> names;
  for_each_param(c, m.w, [&](ParamRef& p) {
    params.push_back(p.tensor);
    names.push_back(p.name);
  }, ParamOptions{false});
  for_each_param(c, g, [&](ParamRef& p) { grads.push_back(p.tensor); }, ParamOptions{false});
  for (size_t i = 0; i < params.size(); i++) {
    const bool interesting = names[i].find("embed") != std::string::npos || names[i].find("layers.0.") != std::string::npos ||
                             names[i].find("model.norm") != std::string::npos;
    if (!interesting) continue;
    // the embedding rows of tokens in the batch carry both paths; sample more there
    const int samples = names[i].find("embed") != std::string::npos ? 40 : 6;
    EXPECT_TRUE(test::check_tensor_grad(*params[i], *grads[i], loss, names[i], kFdStep, 3e-2, 5e-4, samples, 200 + i))
        << names[i] << ": zero gradient";
  }
}

}  // namespace
}  // namespace dseek
