// Sampling filters, seeded determinism, and batched generation equal to one-at-a-time generation.
#include <gtest/gtest.h>

#include <cmath>
#include <algorithm>
#include <map>
#include <numeric>

#include "core/error.h"
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

// Non-finite logits (a diverged model) and out-of-range parameters are errors, never a crash or a token:
// before, temperature NaN or an all-NaN head read order_[-1] (exit 139) and greedy returned token 0.
TEST(Sampler, NonFiniteLogitsAndBadParametersAreErrors) {
  for (float bad : {NAN, INFINITY}) {
    for (float t : {0.0f, 0.8f}) {
      SamplingParams p;
      p.temperature = t;
      p.top_p = 0.9f;
      Sampler s(p);
      std::vector<float> logits = {0.5f, 1.0f, bad, -2.0f};
      try {
        s.sample(logits.data(), 4, {});
        ADD_FAILURE() << "sampled from a logit " << bad;
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("non-finite logit"), std::string::npos) << e.what();
      }
    }
  }
  // -infinity is a token masked out (constrained decoding): never drawn, whatever the parameters
  for (float t : {0.0f, 0.8f, 5.0f}) {
    SamplingParams p;
    p.temperature = t;
    p.top_k = t == 5.0f ? 3 : 0;
    Sampler s(p);
    for (int i = 0; i < 200; i++) {
      std::vector<float> logits = {0.5f, 1.0f, -INFINITY, -2.0f};
      EXPECT_NE(s.sample(logits.data(), 4, {}), 2);
      std::vector<float> one = {-INFINITY, -INFINITY, 3.0f, -INFINITY};
      EXPECT_EQ(s.sample(one.data(), 4, {}), 2);
    }
    std::vector<float> none(4, -INFINITY);
    EXPECT_THROW(s.sample(none.data(), 4, {}), Error);
  }
  auto rejects = [](auto edit, const char* name) {
    SamplingParams p;
    edit(p);
    try {
      Sampler s(p);
      ADD_FAILURE() << name << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  rejects([](SamplingParams& p) { p.temperature = NAN; }, "temperature");
  rejects([](SamplingParams& p) { p.temperature = -1; }, "temperature");
  rejects([](SamplingParams& p) { p.top_p = 0; }, "top_p");
  rejects([](SamplingParams& p) { p.top_p = 2; }, "top_p");
  rejects([](SamplingParams& p) { p.top_p = NAN; }, "top_p");
  rejects([](SamplingParams& p) { p.min_p = -1; }, "min_p");
  rejects([](SamplingParams& p) { p.min_p = NAN; }, "min_p");
  rejects([](SamplingParams& p) { p.top_k = -1; }, "top_k");
  rejects([](SamplingParams& p) { p.repetition_penalty = 0; }, "repetition_penalty");
  auto r = test::run_dseek("generate --model '" + test::shared_dir() + "/conformance/v3-tiny' --prompt-ids 1,2,3 --temperature nan");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find("temperature"), std::string::npos) << r.out;
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

// The filters by their definition: sort the whole vocabulary, keep the top k, renormalise, cut min-p, keep the
// nucleus; draw by walking the kept tokens in that order.
int32_t reference_sample(const SamplingParams& p, std::vector<float> logits, Rng& rng) {
  const int64_t V = int64_t(logits.size());
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  int64_t n = p.top_k > 0 ? std::min<int64_t>(p.top_k, V) : V;
  std::vector<double> pr(static_cast<size_t>(n));
  double z = 0;
  for (int64_t i = 0; i < n; i++) z += (pr[size_t(i)] = std::exp((logits[order[size_t(i)]] - logits[order[0]]) / p.temperature));
  for (auto& v : pr) v /= z;
  while (n > 1 && pr[size_t(n - 1)] < p.min_p * pr[0]) n--;
  if (p.top_p < 1.0f) {
    double cum = 0;
    int64_t keep = 0;
    while (keep < n && cum < p.top_p) cum += pr[size_t(keep++)];
    n = keep;
  }
  double total = 0;
  for (int64_t i = 0; i < n; i++) total += pr[size_t(i)];
  double u = rng.uniform() * total;
  for (int64_t i = 0; i < n; i++)
    if ((u -= pr[size_t(i)]) < 0) return order[size_t(i)];
  return order[size_t(n - 1)];
}

TEST(Sampler, FiltersEqualTheirDefinitionOnALargeVocabulary) {
  Rng r(7);
  std::vector<float> spread(6000), peaked(6000, 0.0f);
  for (auto& v : spread) v = 3.0f * float(r.normal());
  peaked[17] = 10.0f;  // p = e^-10 relative for the rest: the nucleus needs ~2,000 of the small tokens
  for (const auto* logits : {&spread, &peaked})
    for (SamplingParams p : {SamplingParams{.top_p = 0.9f}, SamplingParams{.top_k = 50, .top_p = 0.8f},
                             SamplingParams{.top_p = 0.95f, .min_p = 0.05f}, SamplingParams{.top_k = 20},
                             SamplingParams{.temperature = 0.7f, .top_p = 0.5f},
                             SamplingParams{.min_p = 2.0f}}) {  // min-p above 1 still keeps the top token
      p.seed = 11;
      Sampler s(p);
      Rng ref(11);
      std::map<int32_t, int> got, want;
      for (int i = 0; i < 300; i++) {
        std::vector<float> l = *logits;
        got[s.sample(l.data(), int64_t(l.size()), {})]++;
        want[reference_sample(p, *logits, ref)]++;
      }
      EXPECT_EQ(got, want) << "top_k " << p.top_k << " top_p " << p.top_p << " min_p " << p.min_p;
    }
  // temperature alone draws without sorting: the frequencies follow the softmax
  SamplingParams t;
  t.seed = 3;
  std::vector<float> three{0.0f, 1.0f, 2.0f};
  auto h = histogram(t, three, {}, 6000);
  const double zt = 1 + std::exp(1.0) + std::exp(2.0);
  EXPECT_NEAR(h[2] / 6000.0, std::exp(2.0) / zt, 0.02);
  EXPECT_NEAR(h[0] / 6000.0, 1 / zt, 0.015);
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
