// Sampling filters, seeded determinism, and batched generation equal to one-at-a-time generation.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "core/fileio.h"
#include "inference/batch_generator.h"
#include "inference/generator.h"
#include "inference/sampler.h"
#include "test_util.h"

namespace dseek {
namespace {

std::map<int32_t, int> histogram(SamplingParams p, std::vector<float> logits, const std::vector<int32_t>& ctx, int n) {
  Sampler s(p);
  std::map<int32_t, int> h;
  for (int i = 0; i < n; i++) {
    std::vector<float> l = logits;
    h[s.sample(l.data(), int64_t(l.size()), ctx)]++;
  }
  return h;
}

TEST(Sampler, GreedyTopKTopPMinP) {
  std::vector<float> logits{1.0f, 3.0f, 2.0f, 0.0f, 2.9f};  // order: 1, 4, 2, 0, 3
  SamplingParams g;
  g.temperature = 0;
  EXPECT_EQ(histogram(g, logits, {}, 5), (std::map<int32_t, int>{{1, 5}}));
  SamplingParams k;
  k.top_k = 2;
  auto hk = histogram(k, logits, {}, 2000);
  EXPECT_EQ(hk.size(), 2u);
  EXPECT_TRUE(hk.count(1) && hk.count(4));
  // probabilities (T=1): 0.055, 0.407, 0.150, 0.020, 0.368 -> top-p 0.75 keeps {1, 4} (0.775)
  SamplingParams p;
  p.top_p = 0.75f;
  auto hp = histogram(p, logits, {}, 2000);
  EXPECT_EQ(hp.size(), 2u);
  SamplingParams mp;
  mp.min_p = 0.3f;  // keeps p >= 0.3 * 0.407 = 0.122: {1, 4, 2}
  auto hm = histogram(mp, logits, {}, 3000);
  EXPECT_EQ(hm.size(), 3u);
  EXPECT_TRUE(hm.count(2));
  // frequencies follow the renormalised probabilities
  EXPECT_NEAR(double(hk[1]) / 2000, 0.407 / (0.407 + 0.368), 0.04);
}

TEST(Sampler, RepetitionPenaltyAndTemperature) {
  std::vector<float> logits{2.0f, 1.9f, -1.0f};
  SamplingParams g;
  g.temperature = 0;
  g.repetition_penalty = 1.2f;  // 2.0 / 1.2 = 1.67 < 1.9
  EXPECT_EQ(histogram(g, logits, {0}, 1).begin()->first, 1);
  std::vector<float> neg{-1.0f, -1.1f};
  EXPECT_EQ(histogram(g, neg, {0}, 1).begin()->first, 1);  // -1.0 * 1.2 = -1.2 < -1.1
  SamplingParams cold;
  cold.temperature = 0.02f;  // p(0) = 1 / (1 + e^-5) = 0.993
  auto hc = histogram(cold, logits, {}, 400);
  EXPECT_EQ(hc[0] + hc[1], 400);
  EXPECT_GT(hc[0], 390);
}

TEST(Sampler, SameSeedSameSequence) {
  std::vector<float> logits{0.1f, 0.5f, 0.3f, 0.2f, 0.0f};
  SamplingParams p;
  p.seed = 42;
  Sampler a(p), b(p);
  for (int i = 0; i < 50; i++) {
    auto la = logits, lb = logits;
    EXPECT_EQ(a.sample(la.data(), 5, {}), b.sample(lb.data(), 5, {}));
  }
}

TEST(BatchGenerator, EqualsOneAtATimeAndSharesIdenticalPrompts) {
  Model m = Model::random(ModelConfig::load(test::source_dir() + "/configs/tiny.json"), 4, DType::F32, false);
  Forward fwd(m);
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 5; i++) {
    GenerationRequest r;
    r.prompt = i < 3 ? std::vector<int32_t>{5, 6, 7, 8} : std::vector<int32_t>{9, 10, int32_t(11 + i)};
    r.sampling.temperature = i == 0 ? 0.0f : 1.0f;
    r.sampling.seed = uint64_t(100 + i);
    r.stop.max_tokens = 12 + i;
    reqs.push_back(r);
  }
  BatchGenerator bg(fwd);
  BatchStats st;
  auto batch = bg.generate(reqs, nullptr, &st);
  EXPECT_EQ(st.prompt_tokens, 4 + 3 + 3);  // the three identical prompts are prefilled once
  Generator g(fwd);
  for (size_t i = 0; i < reqs.size(); i++) {
    Sampler s(reqs[i].sampling);
    std::vector<int32_t> one;
    g.generate(reqs[i].prompt, s, reqs[i].stop, [&](int32_t t) {
      one.push_back(t);
      return true;
    });
    EXPECT_EQ(batch[i].tokens, one) << "request " << i;
    EXPECT_EQ(int64_t(batch[i].tokens.size()), reqs[i].stop.max_tokens);
  }
}

}  // namespace
}  // namespace dseek
