// Model loading, dtypes (BF16, FP8 with partial 128x128 blocks), configuration space consistency
// (softmax routing, plain q_proj, group-limited greedy, long YaRN sequences) and bad checkpoints.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fileio.h"
#include "core/rng.h"
#include "inference/forward.h"
#include "model/quantize.h"
#include "test_util.h"

namespace dseek {
namespace {

using json = nlohmann::json;

json tiny_config() { return json::parse(read_file(test::source_dir() + "/configs/tiny.json")); }

// Dimensions that are not multiples of 128 and exceed it, so FP8 blocks have partial edges; softmax
// routing, plain q_proj, group-limited greedy, YaRN with long sequences, V2 architecture.
json edge_config() {
  return json{{"architectures", {"DeepseekV2ForCausalLM"}}, {"vocab_size", 300}, {"hidden_size", 200},
              {"intermediate_size", 264}, {"moe_intermediate_size", 72}, {"num_hidden_layers", 3},
              {"first_k_dense_replace", 1}, {"moe_layer_freq", 1}, {"num_attention_heads", 4},
              {"q_lora_rank", nullptr}, {"kv_lora_rank", 136}, {"qk_nope_head_dim", 32}, {"qk_rope_head_dim", 16},
              {"v_head_dim", 24}, {"n_routed_experts", 6}, {"n_shared_experts", 2}, {"num_experts_per_tok", 2},
              {"n_group", 3}, {"topk_group", 2}, {"topk_method", "group_limited_greedy"},
              {"scoring_func", "softmax"}, {"norm_topk_prob", false}, {"routed_scaling_factor", 1.5},
              {"rope_theta", 10000.0}, {"max_position_embeddings", 512},
              {"rope_scaling", {{"type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 64},
                                {"beta_fast", 32}, {"beta_slow", 1}, {"mscale", 0.707}, {"mscale_all_dim", 0.707}}},
              {"rms_norm_eps", 1e-6}, {"initializer_range", 0.05}, {"eos_token_id", 1}};
}

ModelConfig cfg(const json& j) { return ModelConfig::from_json(j, "test-config"); }

std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  Rng r(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& v : t) v = int32_t(r.below(uint64_t(vocab)));
  return t;
}

std::vector<float> logits_of(Model& m, const std::vector<int32_t>& toks, bool decode, AttnImpl impl = AttnImpl::Auto) {
  ForwardOptions fo;
  fo.attn = impl;
  Forward fwd(m, fo);
  const int64_t T = int64_t(toks.size()), V = m.config.vocab_size;
  KVCache cache = fwd.new_cache(T);
  std::vector<float> out(static_cast<size_t>(T * V));
  if (!decode) {
    fwd.run({SeqChunk{&cache, toks.data(), T}}, true, out.data());
  } else {
    for (int64_t t = 0; t < T; t++) fwd.run({SeqChunk{&cache, toks.data() + t, 1}}, false, out.data() + t * V);
  }
  return out;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); i++) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

float max_abs(const std::vector<float>& a) {
  float m = 0;
  for (float v : a) m = std::max(m, std::fabs(v));
  return m;
}

TEST(Model, SaveLoadRoundTripIsExact) {
  test::TempDir d;
  Model m = Model::random(cfg(tiny_config()), 7);
  m.save(d.str());
  Model r = Model::load(d.str());
  auto toks = random_tokens(20, 512, 1);
  EXPECT_EQ(max_abs_diff(logits_of(m, toks, false), logits_of(r, toks, false)), 0.0f);
}

TEST(Model, EdgeConfigAllFormulationsAndDecodeAgreeOnLongYarnSequence) {
  ModelConfig c = cfg(edge_config());
  ASSERT_TRUE(c.yarn_active());
  Model m = Model::random(c, 3);
  auto toks = random_tokens(200, c.vocab_size, 2);  // beyond the original 64 positions
  auto full = logits_of(m, toks, false);
  EXPECT_GT(max_abs(full), 0.05f);
  EXPECT_LT(max_abs_diff(full, logits_of(m, toks, false, AttnImpl::Absorbed)), 1e-4f);
  EXPECT_LT(max_abs_diff(full, logits_of(m, toks, false, AttnImpl::Expanded)), 1e-4f);
  EXPECT_LT(max_abs_diff(full, logits_of(m, toks, true)), 1e-4f);
}

TEST(Model, ChunkedPrefillEqualsOnePass) {
  Model m = Model::random(cfg(edge_config()), 5);
  auto toks = random_tokens(90, 300, 9);
  Forward fwd(m);
  KVCache cache = fwd.new_cache(4);  // forces the cache to grow
  const int64_t V = 300;
  std::vector<float> a(static_cast<size_t>(90 * V));
  fwd.run({SeqChunk{&cache, toks.data(), 37}}, true, a.data());
  fwd.run({SeqChunk{&cache, toks.data() + 37, 53}}, true, a.data() + 37 * V);
  EXPECT_LT(max_abs_diff(a, logits_of(m, toks, false)), 1e-4f);
}

TEST(Model, BatchOfSequencesEqualsSeparateRuns) {
  Model m = Model::random(cfg(tiny_config()), 11);
  auto t1 = random_tokens(13, 512, 1), t2 = random_tokens(29, 512, 2);
  Forward fwd(m);
  KVCache c1 = fwd.new_cache(), c2 = fwd.new_cache();
  std::vector<float> both(static_cast<size_t>(42 * 512));
  fwd.run({SeqChunk{&c1, t1.data(), 13}, SeqChunk{&c2, t2.data(), 29}}, true, both.data());
  auto s1 = logits_of(m, t1, false), s2 = logits_of(m, t2, false);
  std::vector<float> sep(s1);
  sep.insert(sep.end(), s2.begin(), s2.end());
  EXPECT_LT(max_abs_diff(both, sep), 1e-5f);
}

TEST(Model, Fp8WeightsStayFp8AndMatchDequantisedReference) {
  test::TempDir d;
  ModelConfig c = cfg(edge_config());
  Model m = Model::random(c, 21);
  quantize_model_fp8(m);
  m.save(d.str());
  Model q = Model::load(d.str());
  ASSERT_TRUE(q.config.quantization.fp8);
  EXPECT_EQ(q.w.layers[0].mla.kv_b_proj.weight.dtype, DType::F8_E4M3);
  EXPECT_EQ(q.w.layers[1].moe.experts[0].up_proj.weight.dtype, DType::F8_E4M3);
  EXPECT_EQ(q.w.layers[0].mla.kv_b_proj.scale_inv.shape, (Shape{(4 * 56 + 127) / 128, 2}));
  Model ref = Model::load(d.str());
  dequantize_model(ref);
  auto toks = random_tokens(40, c.vocab_size, 4);
  auto want = logits_of(ref, toks, false);
  EXPECT_GT(max_abs(want), 0.05f);
  EXPECT_LT(max_abs_diff(logits_of(q, toks, false), want), 1e-4f);   // tiles dequantised inside the product
  EXPECT_LT(max_abs_diff(logits_of(q, toks, true), want), 1e-4f);    // GEMV on FP8 bytes
}

TEST(Model, Bf16WeightsStayBf16) {
  test::TempDir d;
  ModelConfig c = cfg(tiny_config());
  Model m = Model::random(c, 8, DType::BF16);
  m.save(d.str());
  Model b = Model::load(d.str());
  EXPECT_EQ(b.w.layers[0].mla.q_b_proj.weight.dtype, DType::BF16);
  EXPECT_EQ(b.w.embed.dtype, DType::BF16);
  // reference: the same weights widened to F32
  Model f = Model::load(d.str());
  for_each_param(f.config, f.w, [](ParamRef& p) {
    if (p.tensor->dtype != DType::F32) *p.tensor = p.tensor->to(DType::F32);
  }, ParamOptions{false});
  auto toks = random_tokens(30, c.vocab_size, 3);
  auto want = logits_of(f, toks, false);
  // decode widens BF16 weights against F32 activations: F32 accuracy
  EXPECT_LT(max_abs_diff(logits_of(b, toks, true), want), 1e-4f);
  // prefill runs BF16 x BF16 products: within BF16 rounding of the activations
  EXPECT_LT(max_abs_diff(logits_of(b, toks, false), want), 2e-2f * std::max(1.0f, max_abs(want)));
}

// ------------------------------------------------------------------------------------------------
// Bad checkpoints and configs: one clear error naming the file and the tensor or field.

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ModelBadInput, MissingTensorIsNamed) {
  test::TempDir d;
  Model m = Model::random(cfg(tiny_config()), 1);
  NamedTensors ts = m.hf_tensors();
  ts.erase(std::remove_if(ts.begin(), ts.end(), [](auto& p) { return p.first == "model.layers.2.mlp.experts.5.up_proj.weight"; }),
           ts.end());
  save_safetensors(d / "model.safetensors", ts);
  write_file_atomic(d / "config.json", m.config.to_json().dump());
  std::string e = error_of([&] { Model::load(d.str()); });
  EXPECT_NE(e.find("missing tensor 'model.layers.2.mlp.experts.5.up_proj.weight'"), std::string::npos) << e;
}

TEST(ModelBadInput, ConfigThatDoesNotMatchShapes) {
  test::TempDir d;
  Model m = Model::random(cfg(tiny_config()), 1);
  m.save(d.str());
  json j = json::parse(read_file(d / "config.json"));
  j["kv_lora_rank"] = 40;
  write_file_atomic(d / "config.json", j.dump());
  std::string e = error_of([&] { Model::load(d.str()); });
  EXPECT_NE(e.find("kv_a_proj_with_mqa.weight' has shape [40, 64], but config.json implies [48, 64]"), std::string::npos) << e;
}

TEST(ModelBadInput, ConfigFieldsMissingOrInconsistent) {
  auto err = [](json j) { return error_of([&] { ModelConfig::from_json(j, "c.json"); }); };
  json j = tiny_config();
  j.erase("kv_lora_rank");
  EXPECT_NE(err(j).find("missing field 'kv_lora_rank'"), std::string::npos);
  j = tiny_config();
  j["topk_method"] = "random";
  EXPECT_NE(err(j).find("'topk_method': unknown value 'random'"), std::string::npos);
  j = tiny_config();
  j["num_experts_per_tok"] = 9;
  EXPECT_NE(err(j).find("num_experts_per_tok"), std::string::npos);
  j = tiny_config();
  j["n_group"] = 3;
  EXPECT_NE(err(j).find("'n_group' (3) must divide n_routed_experts (8)"), std::string::npos);
  j = tiny_config();
  j["qk_rope_head_dim"] = 7;
  EXPECT_NE(err(j).find("qk_rope_head_dim"), std::string::npos);
  j = tiny_config();
  j["hidden_size"] = "64";
  EXPECT_NE(err(j).find("'hidden_size' must be an integer"), std::string::npos);
  j = tiny_config();
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  EXPECT_NE(err(j).find("rope_scaling.type"), std::string::npos);
  j = tiny_config();
  j["architectures"] = {"LlamaForCausalLM"};
  EXPECT_NE(err(j).find("LlamaForCausalLM"), std::string::npos);
  j = tiny_config();
  j["quantization_config"] = {{"quant_method", "awq"}};
  EXPECT_NE(err(j).find("quant_method"), std::string::npos);
}

TEST(ModelBadInput, Fp8WeightWithoutScales) {
  test::TempDir d;
  ModelConfig c = cfg(tiny_config());
  Model m = Model::random(c, 1);
  quantize_model_fp8(m);
  NamedTensors ts = m.hf_tensors();
  ts.erase(std::remove_if(ts.begin(), ts.end(), [](auto& p) { return p.first == "model.layers.0.mlp.up_proj.weight_scale_inv"; }),
           ts.end());
  save_safetensors(d / "model.safetensors", ts);
  write_file_atomic(d / "config.json", m.config.to_json().dump());
  std::string e = error_of([&] { Model::load(d.str()); });
  EXPECT_NE(e.find("'model.layers.0.mlp.up_proj.weight_scale_inv'"), std::string::npos) << e;
}

TEST(ModelBadInput, CliPrintsOneErrorLineAndExitsNonZero) {
  test::TempDir d;
  Model m = Model::random(cfg(tiny_config()), 1);
  m.save(d.str());
  std::string b = read_file(d / "model.safetensors");
  write_file_atomic(d / "model.safetensors", b.substr(0, b.size() / 2));  // truncated
  auto r = test::run_dseek("generate --model " + d.str() + " --prompt-ids 1,2,3");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  EXPECT_EQ(r.out.rfind("dseek: error: ", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("model.safetensors"), std::string::npos) << r.out;

  auto r2 = test::run_dseek("generate --model " + d.str() + "/nowhere --prompt-ids 1");
  EXPECT_EQ(r2.status, 1);
  EXPECT_NE(r2.out.find("nowhere"), std::string::npos);
}

TEST(ModelBadInput, TokenOutsideVocabulary) {
  Model m = Model::random(cfg(tiny_config()), 1);
  std::vector<int32_t> toks{1, 2, 512};
  std::string e = error_of([&] { logits_of(m, toks, false); });
  EXPECT_NE(e.find("token id 512"), std::string::npos) << e;
}

}  // namespace
}  // namespace dseek
