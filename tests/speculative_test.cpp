// MTP speculative decoding: the speculative-sampling rule against the target distribution (chi-square), the
// sampler's distribution against its own draws, and end to end: greedy output identical to plain decoding.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <map>
#include <filesystem>
#include <fstream>
#include <regex>

#include "inference/speculative.h"
#include "model/model.h"
#include "test_util.h"

namespace dseek {
namespace {

// Pearson's chi-square of counts against probabilities (cells with p = 0 must have no count).
double chi_square(const std::vector<int64_t>& counts, const std::vector<float>& p, int64_t n) {
  double x2 = 0;
  for (size_t i = 0; i < p.size(); i++) {
    if (p[i] == 0) {
      if (counts[i] != 0) return 1e30;
      continue;
    }
    const double e = double(p[i]) * double(n);
    x2 += (double(counts[i]) - e) * (double(counts[i]) - e) / e;
  }
  return x2;
}
// chi-square quantile for 5 degrees of freedom at p = 1e-4 (a false alarm once in 10,000 runs)
constexpr double kChi2Df5 = 25.74;

TEST(SpeculativeSampling, AcceptedTokensFollowTheTargetWhateverTheDraft) {
  const std::vector<float> p = {0.05f, 0.30f, 0.10f, 0.25f, 0.20f, 0.10f};
  const std::vector<std::vector<float>> drafts = {
      {1 / 6.f, 1 / 6.f, 1 / 6.f, 1 / 6.f, 1 / 6.f, 1 / 6.f},  // uniform
      {0.70f, 0.02f, 0.02f, 0.02f, 0.02f, 0.22f},             // wrong mode
      p,                                                       // perfect draft: always accepted
      {0.0f, 0.0f, 0.5f, 0.0f, 0.0f, 0.5f},                    // misses most of p's support
      {0.0f, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f},                    // greedy-like draft
  };
  const int64_t n = 200000;
  for (size_t k = 0; k < drafts.size(); k++) {
    const auto& q = drafts[k];
    Rng rng(1234 + k);
    std::vector<int64_t> counts(6, 0), naive(6, 0);
    int64_t accepted = 0;
    double expected_accept = 0;
    for (size_t i = 0; i < 6; i++) expected_accept += std::min(p[i], q[i]);
    for (int64_t t = 0; t < n; t++) {
      const int32_t d = draw_from(q, rng);
      bool acc = false;
      counts[size_t(speculative_pick(p, q, d, rng, acc))]++;
      accepted += acc;
      naive[size_t(d)]++;  // keeping every draft: distributed as q
    }
    EXPECT_LT(chi_square(counts, p, n), kChi2Df5) << "draft " << k;
    // acceptance rate sum_i min(p_i, q_i) (binomial standard deviation < 0.0012)
    EXPECT_NEAR(double(accepted) / double(n), expected_accept, 0.006) << "draft " << k;
    if (k != 2) EXPECT_GT(chi_square(naive, p, n), 1000) << "the test tells the draft from the target";
  }
}

TEST(Sampler, ProbabilitiesAreWhatSampleDraws) {
  std::vector<float> logits = {1.0f, 2.5f, 0.3f, 2.5f, -1.0f, 0.9f};
  struct Case {
    float temperature;
    int64_t top_k;
    float top_p, min_p, repetition;
  };
  for (const Case& c : {Case{1.0f, 0, 1.0f, 0.0f, 1.0f}, Case{0.7f, 3, 1.0f, 0.0f, 1.0f}, Case{1.3f, 0, 0.8f, 0.0f, 1.0f},
                        Case{1.0f, 4, 0.9f, 0.2f, 1.0f}, Case{0.9f, 0, 1.0f, 0.3f, 1.3f}}) {
    SamplingParams sp;
    sp.temperature = c.temperature;
    sp.top_k = c.top_k;
    sp.top_p = c.top_p;
    sp.min_p = c.min_p;
    sp.repetition_penalty = c.repetition;
    sp.seed = 9;
    Sampler s(sp);
    const std::vector<int32_t> context = {1, 5};
    std::vector<float> p, l = logits;
    s.probabilities(l.data(), 6, context, p);
    int df = -1;
    for (float v : p) df += v > 0;
    const int64_t n = 100000;
    std::vector<int64_t> counts(6, 0);
    for (int64_t t = 0; t < n; t++) {
      std::vector<float> x = logits;
      counts[size_t(s.sample(x.data(), 6, context))]++;
    }
    // quantiles at 1e-4 for 1..5 degrees of freedom
    const double crit[] = {0, 15.14, 18.42, 21.11, 23.51, 25.74};
    ASSERT_GE(df, 1);
    EXPECT_LT(chi_square(counts, p, n), crit[df]) << "temperature " << c.temperature << " top_k " << c.top_k;
  }
  SamplingParams greedy;
  greedy.temperature = 0;
  Sampler g(greedy);
  std::vector<float> p, l = logits;
  g.probabilities(l.data(), 6, {}, p);
  EXPECT_EQ(p, (std::vector<float>{0, 1, 0, 0, 0, 0}));  // the first maximum, as sample() picks
}

// A random model (so most drafts are rejected): greedy speculative decoding equals plain greedy decoding.
TEST(Speculative, GreedyOutputEqualsPlainDecodingOnARandomModel) {
  ModelConfig c = ModelConfig::load(test::source_dir() + "/configs/tiny.json");
  Model m = Model::random(c, 21, DType::F32, true);
  ASSERT_FALSE(m.w.mtp.empty());
  Forward fwd(m);
  SamplingParams greedy;
  greedy.temperature = 0;
  StopConditions stop;
  stop.max_tokens = 60;
  stop.stop_ids = {};
  for (int salt = 0; salt < 6; salt++) {
    const int k = 1 + salt % 3;  // drafts per step
    std::vector<int32_t> prompt;
    for (int i = 0; i < 5 + 4 * salt; i++) prompt.push_back(int32_t((i * 31 + salt * 7 + 3) % 500));
    std::vector<int32_t> a, b;
    Sampler sa(greedy), sb(greedy);
    Generator(fwd).generate(prompt, sa, stop, [&](int32_t t) { a.push_back(t); return true; });
    SpeculativeStats st;
    SpeculativeGenerator(fwd, k).generate(prompt, sb, stop, [&](int32_t t) { b.push_back(t); return true; }, &st);
    EXPECT_EQ(a, b) << salt << " k " << k;
    EXPECT_GT(st.drafted, 0);
    // each pass yields its accepted drafts and one more token (the first comes from the prefill)
    EXPECT_EQ(st.main_passes + 1, int64_t(b.size()) - st.accepted) << k;
  }
}

// Sampling at temperature 1 (top-k 3): the joint distribution of the three generated tokens is the same with and
// without speculation (2 drafts per step), by a two-sample chi-square over the sequences (rare ones pooled). This
// random model's MTP drafts are nearly always rejected, so what this checks is the bookkeeping at temperature > 0
// (cache rollback, the contexts of the draft and target distributions); the acceptance rule itself is checked
// above, where a wrong residual fails by orders of magnitude.
TEST(Speculative, SampledTokensHaveThePlainDistribution) {
  ModelConfig c = ModelConfig::load(test::source_dir() + "/configs/tiny.json");
  Model m = Model::random(c, 5, DType::F32, true);
  Forward fwd(m);
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.top_k = 3;
  StopConditions stop;
  stop.max_tokens = 3;
  stop.stop_ids = {};
  const std::vector<int32_t> prompt = {7, 8, 9, 10};
  std::map<std::vector<int32_t>, std::array<int64_t, 2>> cells;
  const int runs = 1200;
  SpeculativeStats total;
  for (int r = 0; r < runs; r++)
    for (int which = 0; which < 2; which++) {
      sp.seed = uint64_t(r * 2 + which);
      Sampler s(sp);
      std::vector<int32_t> out;
      auto take = [&](int32_t t) { out.push_back(t); return true; };
      if (which == 0) {
        Generator(fwd).generate(prompt, s, stop, take);
      } else {
        SpeculativeStats st;
        SpeculativeGenerator(fwd, 2).generate(prompt, s, stop, take, &st);
        total.drafted += st.drafted;
        total.accepted += st.accepted;
      }
      cells[out][size_t(which)]++;
    }
  // sequences seen fewer than 10 times in all are pooled into one cell
  std::vector<std::array<int64_t, 2>> pooled(1, {0, 0});
  for (auto& [seq, n] : cells) {
    if (n[0] + n[1] >= 10) {
      pooled.push_back(n);
    } else {
      pooled[0][0] += n[0];
      pooled[0][1] += n[1];
    }
  }
  if (pooled[0][0] + pooled[0][1] == 0) pooled.erase(pooled.begin());
  double x2 = 0;
  for (auto& n : pooled) x2 += double((n[0] - n[1]) * (n[0] - n[1])) / double(n[0] + n[1]);
  const int df = int(pooled.size()) - 1;
  // chi-square quantiles at p = 1e-4 for 1..26 degrees of freedom
  const double crit[] = {0,     15.14, 18.42, 21.11, 23.51, 25.74, 27.86, 29.88, 31.83, 33.72, 35.56, 37.37, 39.13, 40.87,
                         42.58, 44.26, 45.92, 47.57, 49.19, 50.80, 52.39, 53.96, 55.52, 57.08, 58.61, 60.14, 61.66};
  ASSERT_GE(df, 2);
  ASSERT_LE(df, 26);
  EXPECT_LT(x2, crit[df]) << pooled.size() << " cells";
  EXPECT_GT(total.drafted, 0);
}

// End to end on a trained model: a tiny MLA + MoE + MTP model fine-tuned on three chats (its MTP module learns
// them too). `generate --speculative mtp` prints what plain decoding prints, with most drafts accepted.
TEST(Speculative, GenerateCommandOnATrainedModel) {
  test::TempDir d;
  {
    std::ofstream chats(d / "chats.jsonl"), text(d / "corpus.txt");
    const char* pairs[][2] = {{"What is six times seven?", "Six sevens are forty-two, so the answer is 42."},
                              {"Name a colour.", "Blue is a colour, and so is green."},
                              {"Say hello.", "Hello there, my good friend, hello."}};
    for (auto& p : pairs) {
      chats << R"({"messages": [{"role": "user", "content": ")" << p[0] << R"("}, {"role": "assistant", "content": ")"
            << p[1] << "\"}]}\n";
      text << p[0] << "\n" << p[1] << "\n";
    }
  }
  const std::string q = "'";
  for (const std::string& args :
       {"tokenizer train --vocab-size 512 --input " + q + d / "corpus.txt" + q + " --out " + q + d / "tok" + q,
        "init --config " + q + test::source_dir() + "/configs/tiny.json' --tokenizer '" + d / "tok" + "' --out '" + d / "init" + q,
        "sft --model '" + d / "init" + "' --data '" + d / "chats.jsonl" + "' --out '" + d / "run" +
            "' --steps 300 --lr 3e-3 --batch-size 4 --seq-len 64 --threads 1"}) {
    const auto r = test::run_dseek(args);
    ASSERT_EQ(r.status, 0) << args << "\n" << r.out;
  }
  // the reply (stdout) and the reports (stderr) apart
  const std::string gen = "echo 'Say hello.' | " + test::dseek_binary() + " generate --model '" + d / "run" +
                          "' --chat --max-tokens 40 --temperature 0 --threads 1";
  const auto plain = test::run_shell("(" + gen + " 2>/dev/null)");
  const auto spec = test::run_shell("(" + gen + " --speculative mtp 2>/dev/null)");
  ASSERT_EQ(plain.status, 0);
  ASSERT_EQ(spec.status, 0);
  EXPECT_NE(plain.out.find("Hello there"), std::string::npos) << plain.out;
  EXPECT_EQ(spec.out, plain.out);
  const auto report = test::run_shell("(" + gen + " --speculative mtp 2>&1 >/dev/null)");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(report.out, m, std::regex(R"(speculative \(mtp\): (\d+) of (\d+) drafts accepted)"))) << report.out;
  ASSERT_GT(std::stoi(m[2]), 3) << report.out;
  EXPECT_GT(std::stod(m[1]) / std::stod(m[2]), 0.5) << report.out;
  // three drafts per step (the MTP module chained): the same reply in fewer passes of the main model
  const auto three = test::run_shell("(" + gen + " --speculative mtp --draft-tokens 3 2>/dev/null)");
  EXPECT_EQ(three.out, plain.out);
  const auto report3 = test::run_shell("(" + gen + " --speculative mtp --draft-tokens 3 2>&1 >/dev/null)");
  ASSERT_TRUE(std::regex_search(report3.out, m, std::regex(R"(([0-9.]+) tokens per main-model pass)"))) << report3.out;
  EXPECT_GT(std::stod(m[1]), 1.5) << report3.out;
  // a model without an MTP module is refused, naming the flag
  const auto none = test::run_dseek("generate --model '" + d / "tok" + "' --prompt x --speculative mtp");
  EXPECT_NE(none.status, 0);
}

}  // namespace
}  // namespace dseek
