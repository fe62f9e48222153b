// Conformance of the dense architectures (Qwen2ForCausalLM, LlamaForCausalLM) with Hugging Face transformers'
// own modeling code, float32: ../shared/conformance/qwen2-tiny (computed by transformers itself) and the cases in
// tests/data/dense (computed by tools/torch_ref/dense_model.py, a twin written from the transformers modeling
// code and checked against qwen2-tiny): untied and tied heads, q/k/v and MLP biases, MHA and GQA, BF16 sharded
// checkpoints, and every RoPE scaling type (linear, dynamic NTK, YaRN, llama3, LongRoPE).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fileio.h"
#include "formats/safetensors.h"
#include "inference/forward.h"
#include "model/quantize.h"
#include "model/rope.h"
#include "numeric_util.h"
#include "test_util.h"

namespace dseek {
namespace {

using test::max_abs_diff;



struct DenseCase {
  std::string name, dir;
};

std::vector<DenseCase> dense_cases() {
  std::vector<DenseCase> cs = {{"qwen2_tiny_shared", test::shared_dir() + "/conformance/qwen2-tiny"}};
  for (const char* n : {"qwen2-untied", "qwen2-bf16-sharded", "llama3-rope", "llama-bias-mha", "llama-linear",
                        "llama-dynamic", "llama-yarn", "llama-longrope"}) {
    std::string id = n;
    std::replace(id.begin(), id.end(), '-', '_');
    cs.push_back({id, test::source_dir() + "/tests/data/dense/" + n});
  }
  return cs;
}

struct Dense : ::testing::TestWithParam<DenseCase> {
  std::string dir = GetParam().dir;
  SafetensorsFile expected = SafetensorsFile::open(dir + "/expected.safetensors");
  Tensor tokens = expected.get("tokens");
  int64_t B = tokens.dim(0), T = tokens.dim(1);
};

// The checkpoint with BF16/F16 weights widened to F32: transformers loads a checkpoint in float32 by default.
Model load_f32(const std::string& dir) {
  Model m = Model::load(dir);
  widen_model_f32(m);
  return m;
}

std::vector<float> run_logits(Model& m, const Tensor& tokens, bool decode, ForwardTrace* trace = nullptr) {
  Forward fwd(m, ForwardOptions{});
  return sequence_logits(fwd, tokens.as<int32_t>(), tokens.dim(0), tokens.dim(1), decode, trace);
}

TEST_P(Dense, RopeFrequenciesAndAttentionScaling) {
  ModelConfig c = ModelConfig::load(dir);
  RopeTable rope(c);
  rope.prepare(T);  // dynamic NTK: the frequencies of a T-token forward
  Tensor ref = expected.get("rope_inv_freq");
  ASSERT_EQ(int64_t(rope.inv_freq().size()), ref.numel());
  // torch evaluates base**(2i/d) in float32 pow (within 1 ulp of the correctly rounded value); allow a few ulp.
  for (size_t i = 0; i < rope.inv_freq().size(); i++)
    EXPECT_NEAR(rope.inv_freq()[i], ref.f32()[i], 1e-6f * std::fabs(ref.f32()[i])) << i;
  if (expected.contains("rope_attention_scaling"))
    EXPECT_NEAR(rope.attention_scaling(), expected.get("rope_attention_scaling").f32()[0], 1e-6f);
}

TEST_P(Dense, FullSequenceLogitsAndHiddenStates) {
  Model m = load_f32(dir);
  ForwardTrace trace;
  std::vector<float> logits = run_logits(m, tokens, false, &trace);
  Tensor ref = expected.get("logits");
  ASSERT_EQ(size_t(ref.numel()), logits.size());
  EXPECT_LT(max_abs_diff(logits.data(), ref.f32(), logits.size()), 1e-4f);
  Tensor hs = expected.get("hidden_states");  // [layers + 1, B, T, D]
  const int64_t D = m.config.hidden_size;
  ASSERT_EQ(size_t(hs.dim(0)), trace.hidden.size());
  for (int64_t i = 0; i < hs.dim(0); i++)
    EXPECT_LT(max_abs_diff(trace.hidden[size_t(i)].data(), hs.f32() + i * B * T * D, size_t(B * T * D)), 1e-4f)
        << "hidden state " << i;
}

// Token-by-token decode through the GQA cache. Under dynamic NTK scaling transformers recomputes the
// frequencies at every step from the longest position so far while earlier keys keep their old rotation, so
// decode differs from the full forward; `decode_logits` is what transformers' own cache produces.
TEST_P(Dense, DecodeLogitsThroughKVCache) {
  Model m = load_f32(dir);
  std::vector<float> logits = run_logits(m, tokens, true);
  Tensor ref = expected.get("decode_logits");
  ASSERT_EQ(size_t(ref.numel()), logits.size());
  EXPECT_LT(max_abs_diff(logits.data(), ref.f32(), logits.size()), 1e-4f);
}

// Prefill in two chunks (the first 5 tokens, then the rest) through the cache equals the full forward.
TEST_P(Dense, ChunkedPrefillMatchesFullForward) {
  Model m = load_f32(dir);
  if (m.config.rope_scaling.type == RopeScaling::Type::Dynamic) GTEST_SKIP() << "dynamic NTK depends on chunking";
  Forward fwd(m, ForwardOptions{});
  const int64_t V = m.config.vocab_size, split = 5;
  Tensor ref = expected.get("logits");
  for (int64_t b = 0; b < B; b++) {
    KVCache cache = fwd.new_cache(T);
    std::vector<float> out(size_t(T * V));
    const int32_t* tk = tokens.as<int32_t>() + b * T;
    std::vector<SeqChunk> first = {{&cache, tk, split}}, rest = {{&cache, tk + split, T - split}};
    fwd.run(first, true, out.data());
    fwd.run(rest, true, out.data() + split * V);
    EXPECT_LT(max_abs_diff(out.data(), ref.f32() + b * T * V, size_t(T * V)), 1e-4f) << "sequence " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(Cases, Dense, ::testing::ValuesIn(dense_cases()),
                         [](const auto& info) { return info.param.name; });

}  // namespace
}  // namespace dseek

namespace dseek {
namespace {

bool mentions(const std::string& message, const std::string& part) { return message.find(part) != std::string::npos; }

// A field that does not fit the architecture is an error naming it (and the message says what to do).
TEST(DenseConfig, FieldsThatDoNotFitAreNamed) {
  const nlohmann::json base = nlohmann::json::parse(read_file(test::shared_dir() + "/conformance/qwen2-tiny/config.json"));
  auto error_of = [&](const std::function<void(nlohmann::json&)>& edit) -> std::string {
    nlohmann::json j = base;
    edit(j);
    const std::string e = test::error_of([&] { ModelConfig::from_json(j, "cfg.json"); });
    return e.empty() ? "(accepted)" : e;
  };
  EXPECT_EQ(error_of([](auto&) {}), "(accepted)");
  EXPECT_PRED2(mentions, error_of([](auto& j) { j["use_sliding_window"] = true; }), ("'use_sliding_window'"));
  EXPECT_PRED2(mentions, error_of([](auto& j) { j["kv_lora_rank"] = 64; }), ("'kv_lora_rank'"));
  EXPECT_PRED2(mentions, error_of([](auto& j) { j["n_routed_experts"] = 8; }), ("'n_routed_experts'"));
  EXPECT_PRED2(mentions, error_of([](auto& j) { j["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}}; }), ("'rope_scaling'"));
  EXPECT_PRED2(mentions, error_of([](auto& j) { j["num_key_value_heads"] = 3; }), ("'num_key_value_heads'"));
  EXPECT_PRED2(mentions, error_of([](auto& j) { j["head_dim"] = 8; }), ("'head_dim'"));
  EXPECT_PRED2(mentions, error_of([](auto& j) { j["hidden_act"] = "gelu"; }), ("'hidden_act'"));
  EXPECT_PRED2(mentions, error_of([](auto& j) { j["eos_token_id"] = 100000; }), ("'eos_token_id'"));
  EXPECT_PRED2(mentions, error_of([](auto& j) { j["num_attention_heads"] = "4"; }), ("'num_attention_heads'"));
  // Llama: rope types and their fields
  auto llama = [](nlohmann::json& j) {
    j["model_type"] = "llama";
    j["architectures"] = {"LlamaForCausalLM"};
    j.erase("use_sliding_window");
    j.erase("sliding_window");
    j.erase("max_window_layers");
  };
  EXPECT_EQ(error_of(llama), "(accepted)");
  EXPECT_PRED2(mentions, error_of([&](auto& j) {
                llama(j);
                j["rope_scaling"] = {{"rope_type", "su"}, {"factor", 2.0}};
              }), ("'rope_scaling.rope_type'"));
  EXPECT_PRED2(mentions, error_of([&](auto& j) {
                llama(j);
                j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
              }), ("rope_scaling."));
  EXPECT_PRED2(mentions, error_of([&](auto& j) {
                llama(j);
                j["q_lora_rank"] = 16;
              }), ("'q_lora_rank'"));
  EXPECT_PRED2(mentions, error_of([&](auto& j) {
                j["architectures"] = {"MistralForCausalLM"};
                j["model_type"] = "mistral";
              }), ("'architectures'"));
}

}  // namespace
}  // namespace dseek
