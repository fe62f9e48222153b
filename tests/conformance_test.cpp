// Conformance with DeepSeek's reference inference code (../shared/conformance/v3-tiny, float32).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "formats/safetensors.h"
#include "inference/forward.h"
#include "model/rope.h"
#include "numeric_util.h"
#include "test_util.h"

namespace dseek {
namespace {

using test::max_abs_diff;

struct V3Tiny : ::testing::Test {
  std::string dir = test::shared_dir() + "/conformance/v3-tiny";
  SafetensorsFile expected = SafetensorsFile::open(dir + "/expected.safetensors");
  Tensor tokens = expected.get("tokens");
  int64_t B = tokens.dim(0), T = tokens.dim(1);
};



std::vector<float> run_logits(Model& m, const Tensor& tokens, bool decode, AttnImpl impl, ForwardTrace* trace = nullptr) {
  ForwardOptions fo;
  fo.attn = impl;
  Forward fwd(m, fo);
  return sequence_logits(fwd, tokens.as<int32_t>(), tokens.dim(0), tokens.dim(1), decode, trace);
}

TEST_F(V3Tiny, RopeInverseFrequenciesMatchYarn) {
  ModelConfig c = ModelConfig::load(dir);
  std::vector<float> f = rope_inv_freq(c);
  Tensor ref = expected.get("rope_inv_freq");
  ASSERT_EQ(int64_t(f.size()), ref.numel());
  // The reference evaluates base**(2i/d) with torch's float32 pow, which is within 1 ulp of the correctly
  // rounded value we compute; allow 2 ulp (2.4e-7 relative).
  for (size_t i = 0; i < f.size(); i++) EXPECT_NEAR(f[i], ref.f32()[i], 2.4e-7f * std::fabs(ref.f32()[i])) << i;
}

TEST_F(V3Tiny, SoftmaxScaleIncludesMscaleSquared) {
  ModelConfig c = ModelConfig::load(dir);
  EXPECT_NEAR(c.softmax_scale(), std::pow(24.0, -0.5) * std::pow(0.1 * std::log(4.0) + 1.0, 2), 1e-12);
  EXPECT_NEAR(c.softmax_scale(), 0.264642, 1e-6);
}

TEST_F(V3Tiny, FullSequenceLogitsHiddenStatesAndExperts) {
  Model m = Model::load(dir);
  ForwardTrace trace;
  std::vector<float> logits = run_logits(m, tokens, false, AttnImpl::Auto, &trace);
  Tensor ref = expected.get("logits");
  ASSERT_EQ(size_t(ref.numel()), logits.size());
  EXPECT_LT(max_abs_diff(logits.data(), ref.f32(), logits.size()), 1e-4f);

  Tensor hs = expected.get("hidden_states");  // [layers + 1, B, T, D]
  const int64_t D = m.config.hidden_size;
  for (int64_t i = 0; i < hs.dim(0); i++)
    EXPECT_LT(max_abs_diff(trace.hidden[size_t(i)].data(), hs.f32() + i * B * T * D, size_t(B * T * D)), 1e-4f)
        << "hidden state " << i;

  for (int64_t l = 0; l < m.config.num_hidden_layers; l++) {
    if (!m.config.is_moe_layer(l)) continue;
    Tensor idx = expected.get("router_indices." + std::to_string(l));
    Tensor wts = expected.get("router_weights." + std::to_string(l));
    const Routing& r = trace.routing[size_t(l)];
    const int64_t K = r.k;
    for (int64_t row = 0; row < B * T; row++) {
      std::set<int32_t> want(idx.as<int32_t>() + row * K, idx.as<int32_t>() + (row + 1) * K);
      std::set<int32_t> got(r.idx.begin() + row * K, r.idx.begin() + (row + 1) * K);
      ASSERT_EQ(want, got) << "layer " << l << " row " << row;
      for (int64_t k = 0; k < K; k++) {
        int32_t e = idx.as<int32_t>()[row * K + k];
        auto it = std::find(r.idx.begin() + row * K, r.idx.begin() + (row + 1) * K, e);
        EXPECT_NEAR(r.weight[size_t(it - r.idx.begin())], wts.f32()[row * K + k], 1e-5f);
      }
    }
  }
}

TEST_F(V3Tiny, DecodeLogitsThroughLatentCache) {
  Model m = Model::load(dir);
  Tensor ref = expected.get("decode_logits");
  for (AttnImpl impl : {AttnImpl::Auto, AttnImpl::Absorbed, AttnImpl::Expanded}) {
    std::vector<float> logits = run_logits(m, tokens, true, impl);
    EXPECT_LT(max_abs_diff(logits.data(), ref.f32(), logits.size()), 1e-4f) << int(impl);
  }
}

TEST_F(V3Tiny, BothAttentionFormulationsAgreeOnPrefill) {
  Model m = Model::load(dir);
  Tensor ref = expected.get("logits");
  std::vector<float> absorbed = run_logits(m, tokens, false, AttnImpl::Absorbed);
  std::vector<float> expanded = run_logits(m, tokens, false, AttnImpl::Expanded);
  EXPECT_LT(max_abs_diff(absorbed.data(), ref.f32(), absorbed.size()), 1e-4f);
  EXPECT_LT(max_abs_diff(expanded.data(), ref.f32(), expanded.size()), 1e-4f);
}

}  // namespace
}  // namespace dseek
