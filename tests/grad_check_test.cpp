// Finite-difference checks of every backward pass: RMSNorm, SwiGLU, RoPE with YaRN, attention (causal and
// packed), routing weights and the balance loss (sigmoid and softmax), embedding and cross-entropy, a whole
// decoder layer (dense and MoE, with and without low-rank q) and the whole model with MTP.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/fileio.h"
#include "core/rng.h"
#include "kernels/attention.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"
#include "model/model.h"
#include "model/rope.h"
#include "model/router.h"
#include "numeric_util.h"
#include "test_util.h"
#include "model/layers/decoder_layer.h"
#include "model/layers/embedding.h"
#include "model/layers/head.h"
#include "train/graph.h"

namespace dseek {
namespace {

using json = nlohmann::json;
using test::check_grad;
using test::dot;
using test::randn;

TEST(GradCheck, RmsNorm) {
  const int64_t R = 5, D = 24;
  auto x = randn(R * D, 1), w = randn(D, 2), proj = randn(R * D, 3);
  std::vector<float> y(R * D), rstd(R);
  auto loss = [&] {
    rmsnorm_forward(x.data(), D, w.data(), 1e-6f, R, D, y.data(), D, rstd.data());
    return dot(y, proj);
  };
  loss();
  std::vector<float> dx(R * D), dw(D, 0.0f);
  rmsnorm_backward(x.data(), D, w.data(), rstd.data(), proj.data(), D, R, D, dx.data(), D, dw.data(), false);
  check_grad(x, dx, loss, "rmsnorm dx");
  check_grad(w, dw, loss, "rmsnorm dw");
}

TEST(GradCheck, SwiGlu) {
  const int64_t n = 64;
  auto g = randn(n, 1, 2.0f), u = randn(n, 2), proj = randn(n, 3);
  std::vector<float> h(n), dg(n), du(n);
  auto loss = [&] {
    swiglu_forward(g.data(), u.data(), h.data(), n);
    return dot(h, proj);
  };
  swiglu_backward(g.data(), u.data(), proj.data(), dg.data(), du.data(), n);
  check_grad(g, dg, loss, "swiglu dg");
  check_grad(u, du, loss, "swiglu du");
}

ModelConfig yarn_config() {
  json j = json::parse(read_file(test::shared_dir() + "/conformance/v3-tiny/config.json"));
  return ModelConfig::from_json(j, "v3-tiny");
}

TEST(GradCheck, RopeWithYarn) {
  ModelConfig c = yarn_config();
  ASSERT_TRUE(c.yarn_active());
  RopeTable rope(c);
  const int64_t R = 6, H = 3, dr = c.qk_rope_head_dim, ld = H * dr + 5;
  std::vector<int32_t> pos{0, 3, 17, 40, 90, 127};
  auto x = randn(R * ld, 1), proj = randn(R * ld, 2);
  auto loss = [&] {
    std::vector<float> y = x;
    rope_apply(y.data(), R, ld, 5, H, dr, pos.data(), rope);
    return dot(y, proj);
  };
  std::vector<float> dx = proj;
  rope_apply(dx.data(), R, ld, 5, H, dr, pos.data(), rope, /*inverse=*/true);
  check_grad(x, dx, loss, "rope dx");
}

void attention_case(bool packed) {
  AttentionDims a;
  a.heads = 2;
  a.Tq = a.Tk = 13;
  a.dqk = 8;
  a.dv = 6;
  a.scale = 0.4f;
  std::vector<int32_t> kb(13, 0);
  if (packed)
    for (int i = 5; i < 13; i++) kb[size_t(i)] = 5;  // two documents: rows 0-4 and 5-12
  a.key_begin = packed ? kb.data() : nullptr;
  auto Q = randn(size_t(2 * 13 * 8), 1), K = randn(size_t(2 * 13 * 8), 2), V = randn(size_t(2 * 13 * 6), 3);
  auto proj = randn(size_t(13 * 12), 4);
  std::vector<float> O(13 * 12), lse(26);
  auto loss = [&] {
    attention_forward(a, Q.data(), K.data(), V.data(), O.data(), 12, lse.data());
    return dot(O, proj);
  };
  loss();
  std::vector<float> dQ(Q.size()), dK(K.size()), dV(V.size());
  attention_backward(a, Q.data(), K.data(), V.data(), O.data(), 12, proj.data(), 12, lse.data(), dQ.data(), dK.data(),
                     dV.data());
  check_grad(Q, dQ, loss, "attention dQ");
  check_grad(K, dK, loss, "attention dK");
  check_grad(V, dV, loss, "attention dV");
}
TEST(GradCheck, AttentionCausal) { attention_case(false); }
TEST(GradCheck, AttentionPackedDocuments) { attention_case(true); }

TEST(GradCheck, PackedAttentionDoesNotLeakAcrossDocuments) {
  AttentionDims a;
  a.heads = 1;
  a.Tq = a.Tk = 8;
  a.dqk = 4;
  a.dv = 3;
  std::vector<int32_t> kb{0, 0, 0, 3, 3, 3, 3, 3};
  a.key_begin = kb.data();
  auto Q = randn(32, 1), K = randn(32, 2), V = randn(24, 3);
  std::vector<float> O1(24), O2(24);
  attention_forward(a, Q.data(), K.data(), V.data(), O1.data(), 3, nullptr);
  for (int i = 0; i < 12; i++) K[size_t(i)] += 5.0f;  // change the first document's keys and values
  for (int i = 0; i < 9; i++) V[size_t(i)] -= 3.0f;
  attention_forward(a, Q.data(), K.data(), V.data(), O2.data(), 3, nullptr);
  for (int i = 9; i < 24; i++) EXPECT_EQ(O1[size_t(i)], O2[size_t(i)]) << "row " << i / 3 << " sees another document";
}

void router_case(const char* scoring, const char* method, bool norm, double alpha) {
  json j = json::parse(read_file(test::shared_dir() + "/conformance/v3-tiny/config.json"));
  j["scoring_func"] = scoring;
  j["topk_method"] = method;
  j["norm_topk_prob"] = norm;
  ModelConfig c = ModelConfig::from_json(j, "router");
  const int64_t R = 12, E = c.n_routed_experts, K = c.num_experts_per_tok;
  auto z = randn(R * E, 11, 1.5f), bias = randn(E, 12, 0.1f), proj = randn(R * K, 13);
  Routing base;
  route(c, z.data(), bias.data(), R, base);
  auto loss = [&] {
    Routing r;
    route(c, z.data(), bias.data(), R, r);
    EXPECT_EQ(r.idx, base.idx) << "selection flipped under the finite difference";
    double l = 0;
    for (size_t i = 0; i < r.weight.size(); i++) l += double(r.weight[i]) * proj[i];
    return l + (alpha > 0 ? sequence_balance_loss(r, 3, 4, alpha, nullptr) : 0.0);
  };
  std::vector<float> ds(R * E, 0.0f), dz(R * E, 0.0f);
  if (alpha > 0) sequence_balance_loss(base, 3, 4, alpha, ds.data());
  route_backward(c, base, proj.data(), alpha > 0 ? ds.data() : nullptr, dz.data());
  check_grad(z, dz, loss, scoring, 1e-3f, 2e-2, 2e-4, 40);
}
TEST(GradCheck, RouterSigmoidNormalisedWithBalanceLoss) { router_case("sigmoid", "noaux_tc", true, 0.5); }
TEST(GradCheck, RouterSoftmaxUnnormalised) { router_case("softmax", "group_limited_greedy", false, 0.0); }
TEST(GradCheck, RouterSoftmaxNormalisedWithBalanceLoss) { router_case("softmax", "greedy", true, 0.3); }

TEST(GradCheck, EmbeddingAndCrossEntropy) {
  const int64_t V = 37, D = 16, R = 9;
  Tensor E = Tensor::empty(DType::F32, {V, D});
  auto ev = randn(size_t(V * D), 1, 0.5f);
  std::copy(ev.begin(), ev.end(), E.f32());
  Linear head{Tensor::empty(DType::F32, {V, D}), Tensor{}, 128, 128};
  auto hv = randn(size_t(V * D), 2, 0.3f);
  std::copy(hv.begin(), hv.end(), head.weight.f32());
  std::vector<int32_t> toks{1, 5, 5, 36, 0, 9, 5, 1, 20}, tgt{5, 5, 36, 0, -1, 5, 1, 20, 3};
  auto loss = [&] {
    std::vector<float> x(R * D);
    embedding_forward(E, toks.data(), R, x.data());
    return lm_head_cross_entropy(R, x.data(), head, tgt.data(), 1.0f, nullptr, nullptr, Precision::F32).loss_sum;
  };
  std::vector<float> x(R * D), dx(R * D, 0.0f);
  embedding_forward(E, toks.data(), R, x.data());
  Tensor dW = Tensor::zeros(DType::F32, {V, D}), dE = Tensor::zeros(DType::F32, {V, D});
  auto res = lm_head_cross_entropy(R, x.data(), head, tgt.data(), 1.0f, dx.data(), &dW, Precision::F32);
  EXPECT_EQ(res.count, 8);
  embedding_backward(toks.data(), R, dx.data(), dE);
  std::vector<float> ew(E.f32(), E.f32() + V * D), hw(head.weight.f32(), head.weight.f32() + V * D);
  auto loss_e = [&] {
    std::copy(ew.begin(), ew.end(), E.f32());
    return loss();
  };
  check_grad(ew, std::vector<float>(dE.f32(), dE.f32() + V * D), loss_e, "embedding dE");
  std::copy(ew.begin(), ew.end(), E.f32());
  auto loss_h = [&] {
    std::copy(hw.begin(), hw.end(), head.weight.f32());
    return loss();
  };
  check_grad(hw, std::vector<float>(dW.f32(), dW.f32() + V * D), loss_h, "lm_head dW");
}

// ---------------------------------------------------------------------------------------------------------
// A decoder layer and the whole model: every parameter tensor gets sampled coordinates checked.

json small_config(const char* scoring, bool q_lora) {
  json j = json::parse(read_file(test::shared_dir() + "/conformance/v3-tiny/config.json"));
  j["scoring_func"] = scoring;
  if (std::string(scoring) == "softmax") {
    j["topk_method"] = "group_limited_greedy";
    j["norm_topk_prob"] = false;
  }
  if (!q_lora) j["q_lora_rank"] = nullptr;
  j["num_nextn_predict_layers"] = 1;
  j["initializer_range"] = 0.2;
  return j;
}

void layer_case(const char* scoring, bool q_lora, int64_t layer_index) {
  ModelConfig c = ModelConfig::from_json(small_config(scoring, q_lora), "layer");
  Model m = Model::random(c, 5);
  // non-trivial norm weights and biases
  for_each_param(c, m.w, [&](ParamRef& p) {
    if (p.role == ParamRole::Norm) {
      auto v = randn(size_t(p.tensor->numel()), 99, 0.2f);
      for (int64_t i = 0; i < p.tensor->numel(); i++) p.tensor->f32()[i] += v[size_t(i)];
    }
  });
  const LayerWeights& L = m.w.layers[size_t(layer_index)];
  TrainShape s = TrainShape::dense(2, 9);
  for (int64_t r = 0; r < 18; r++) s.positions[size_t(r)] += 100;  // beyond YaRN's original 32 positions
  TrainOptions o;
  o.aux_alpha = 0.05;
  auto x0 = randn(size_t(18 * c.hidden_size), 3), proj = randn(size_t(18 * c.hidden_size), 4);
  LayerCache base_cache;
  {
    std::vector<float> x = x0;
    layer_forward(c, L, m.rope, s, o, x.data(), base_cache);
  }
  auto loss = [&] {
    std::vector<float> x = x0;
    LayerCache lc;
    layer_forward(c, L, m.rope, s, o, x.data(), lc);
    if (L.is_moe) EXPECT_EQ(lc.moe.routing.idx, base_cache.moe.routing.idx) << "routing flipped";
    return dot(x, proj) + (L.is_moe ? lc.moe.aux_loss : 0.0);
  };
  ModelWeights g = zeros_like_weights(c, true);
  std::vector<float> dx = proj;
  layer_backward(c, L, g.layers[size_t(layer_index)], m.rope, s, o, base_cache, dx.data());
  check_grad(x0, dx, loss, "layer dx", 1e-3f, 3e-2, 5e-4, 20);
  int checked = 0;
  ModelWeights& mw = m.w;
  std::vector<Tensor*> params, grads;
  for_each_param(c, mw, [&](ParamRef& p) {
    if (p.name.find("layers." + std::to_string(layer_index) + ".") != std::string::npos && p.role != ParamRole::RouterBias)
      params.push_back(p.tensor);
  });
  for_each_param(c, g, [&](ParamRef& p) {
    if (p.name.find("layers." + std::to_string(layer_index) + ".") != std::string::npos && p.role != ParamRole::RouterBias)
      grads.push_back(p.tensor);
  });
  ASSERT_EQ(params.size(), grads.size());
  for (size_t i = 0; i < params.size(); i++)  // skipped: an expert no token chose
    checked += test::check_tensor_grad(*params[i], *grads[i], loss, "layer weight", 1e-3f, 3e-2, 5e-4, 6, 100 + i);
  EXPECT_GT(checked, 8);
}

TEST(GradCheck, DenseLayerWithLowRankQ) { layer_case("sigmoid", true, 0); }
TEST(GradCheck, MoELayerSigmoidWithBalanceLoss) { layer_case("sigmoid", true, 1); }
TEST(GradCheck, MoELayerSoftmaxPlainQ) { layer_case("softmax", false, 2); }

TEST(GradCheck, WholeModelWithMtp) {
  ModelConfig c = ModelConfig::from_json(small_config("sigmoid", true), "model");
  Model m = Model::random(c, 8);
  Rng r(3);
  std::vector<int32_t> tokens(2 * 11);
  for (auto& t : tokens) t = int32_t(r.below(512));
  MicroBatch mb = MicroBatch::from_tokens(tokens.data(), 2, 10);
  GraphOptions o;
  o.layer.aux_alpha = 0.05;
  o.mtp_lambda = 0.3;
  TrainGraph graph(c);
  ModelWeights g = zeros_like_weights(c, true);
  LossBreakdown base = graph.run(m.w, &g, m.rope, mb, o);
  EXPECT_GT(base.mtp, 0.0);
  EXPECT_GT(base.aux, 0.0);
  auto loss = [&] {
    TrainGraph g2(c);
    return g2.run(m.w, nullptr, m.rope, mb, o).total;
  };
  std::vector<Tensor*> params, grads;
  std::vector<std::string> names;
  for_each_param(c, m.w, [&](ParamRef& p) {
    if (p.role != ParamRole::RouterBias) {
      params.push_back(p.tensor);
      names.push_back(p.name);
    }
  });
  for_each_param(c, g, [&](ParamRef& p) { if (p.role != ParamRole::RouterBias) grads.push_back(p.tensor); });
  int checked = 0;
  for (size_t i = 0; i < params.size(); i++) {
    const bool interesting = names[i].find("embed") != std::string::npos || names[i].find("lm_head") != std::string::npos ||
                             names[i].find("layers.3.") != std::string::npos || names[i].find("layers.0.self_attn.q_a") != std::string::npos ||
                             names[i] == "model.norm.weight";
    if (interesting) checked += test::check_tensor_grad(*params[i], *grads[i], loss, names[i], 1e-3f, 3e-2, 3e-4, 4, 200 + i);
  }
  EXPECT_GT(checked, 10);
}

}  // namespace
}  // namespace dseek
