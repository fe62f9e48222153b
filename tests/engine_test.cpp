// The serving engine (continuous batching, chunked prefill, prefix cache, n choices, cancellation) against the
// plain one-sequence Generator, which decodes with none of them.
#include <gtest/gtest.h>

#include <cmath>

#include "inference/engine.h"
#include "inference/generator.h"
#include "model/model.h"
#include "test_util.h"

namespace dseek {
namespace {

Model tiny_model() {
  ModelConfig c = ModelConfig::load(test::source_dir() + "/configs/tiny.json");
  return Model::random(c, 11, DType::F32, false);
}

std::vector<int32_t> prompt_of(int64_t n, int32_t salt) {
  std::vector<int32_t> p;
  for (int64_t i = 0; i < n; i++) p.push_back(int32_t((i * 37 + salt * 101 + 5) % 500));
  return p;
}

std::vector<int32_t> plain(Forward& fwd, const std::vector<int32_t>& prompt, SamplingParams sp, int64_t max_tokens) {
  Generator gen(fwd);
  Sampler s(sp);
  StopConditions stop;
  stop.max_tokens = max_tokens;
  stop.stop_ids = {};
  std::vector<int32_t> out;
  gen.generate(prompt, s, stop, [&](int32_t t) {
    out.push_back(t);
    return true;
  });
  return out;
}

struct Collected {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::string> reasons;
  EngineUsage usage;
  bool done = false;
};

EngineRequest collect(std::shared_ptr<Collected> c, std::vector<int32_t> prompt, SamplingParams sp, int64_t max_tokens,
                      int n = 1) {
  EngineRequest r;
  r.prompt = std::move(prompt);
  r.sampling = sp;
  r.max_tokens = max_tokens;
  r.n = n;
  c->tokens.resize(size_t(n));
  c->reasons.resize(size_t(n));
  r.on_token = [c](int ch, const EngineToken& t) {
    c->tokens[size_t(ch)].push_back(t.id);
    return true;
  };
  r.on_finish = [c](int ch, const std::string& why) { c->reasons[size_t(ch)] = why; };
  r.on_done = [c](const EngineUsage& u, const std::string&) {
    c->usage = u;
    c->done = true;
  };
  return r;
}

// Six requests of different lengths for three slots: each of the last three is admitted when one of the first
// finishes and is prefilled in chunks of 7 tokens beside the others' decoding. Every request's tokens equal its
// own plain decode (greedy and seeded sampling).
TEST(Engine, ContinuousBatchingEqualsPlainDecoding) {
  Model m = tiny_model();
  Forward fwd(m);
  EngineOptions o;
  o.parallel = 3;
  o.step_tokens = 7;
  o.max_queue = 3;
  o.prefix_cache_bytes = 0;
  Engine eng(fwd, o);
  std::vector<std::shared_ptr<Collected>> got;
  std::vector<std::vector<int32_t>> want;
  for (int i = 0; i < 6; i++) {
    SamplingParams sp;
    sp.temperature = i % 2 ? 0.0f : 0.9f;
    sp.top_k = i % 3 == 0 ? 20 : 0;
    sp.seed = uint64_t(100 + i);
    const auto p = prompt_of(3 + 9 * i, i);
    const int64_t max_tokens = 5 + 3 * i;
    want.push_back(plain(fwd, p, sp, max_tokens));
    got.push_back(std::make_shared<Collected>());
    ASSERT_NE(eng.submit(collect(got.back(), p, sp, max_tokens)), 0u);
  }
  eng.run_until_idle();
  for (int i = 0; i < 6; i++) {
    ASSERT_TRUE(got[size_t(i)]->done);
    EXPECT_EQ(got[size_t(i)]->tokens[0], want[size_t(i)]) << "request " << i;
    EXPECT_EQ(got[size_t(i)]->reasons[0], "length");
  }
  const EngineStats st = eng.stats();
  EXPECT_EQ(st.requests_finished, 6);
  EXPECT_EQ(st.kv_bytes_used, 0);
  EXPECT_GT(st.steps, 0);
}

// A prompt seen before is restored from whole cached blocks (at least its last token is computed again) and the
// output is unchanged; under a small byte budget old blocks are evicted.
TEST(Engine, PrefixCacheRestoresWholeBlocksAndEvicts) {
  Model m = tiny_model();
  Forward fwd(m);
  EngineOptions o;
  o.prefix_block = 8;
  o.prefix_cache_bytes = 1 << 20;
  Engine eng(fwd, o);
  SamplingParams greedy;
  greedy.temperature = 0;
  const auto p = prompt_of(45, 3);
  auto a = std::make_shared<Collected>(), b = std::make_shared<Collected>(), c = std::make_shared<Collected>();
  eng.submit(collect(a, p, greedy, 6));
  eng.run_until_idle();
  eng.submit(collect(b, p, greedy, 6));
  auto longer = p;
  longer.push_back(7);
  longer.push_back(9);
  eng.submit(collect(c, longer, greedy, 6));
  eng.run_until_idle();
  EXPECT_EQ(a->usage.cached_tokens, 0);
  EXPECT_EQ(b->usage.cached_tokens, 40);  // 5 blocks of 8 (the 45th token is computed)
  EXPECT_EQ(c->usage.cached_tokens, 40);
  EXPECT_EQ(b->tokens[0], a->tokens[0]);
  EXPECT_EQ(b->tokens[0], plain(fwd, p, greedy, 6));
  EXPECT_EQ(c->tokens[0], plain(fwd, longer, greedy, 6));
  EXPECT_EQ(eng.stats().prefix.blocks, 5);

  // a budget of 3 blocks keeps the 3 most recently used
  const int64_t block_bytes = int64_t(fwd.new_cache(1).bytes_per_token()) * 8;
  o.prefix_cache_bytes = 3 * block_bytes;
  Engine small(fwd, o);
  auto d = std::make_shared<Collected>();
  small.submit(collect(d, p, greedy, 2));
  small.run_until_idle();
  EXPECT_EQ(small.stats().prefix.blocks, 3);
  EXPECT_EQ(small.stats().prefix.evicted_blocks, 2);
  // the chain's first blocks were evicted: nothing is reachable
  auto e = std::make_shared<Collected>();
  small.submit(collect(e, p, greedy, 2));
  small.run_until_idle();
  EXPECT_EQ(e->usage.cached_tokens, 0);
  EXPECT_EQ(e->tokens[0], d->tokens[0]);
}

// n choices prefill once; choice 0 is the request's seed (equal to a request with n = 1), the others differ.
TEST(Engine, ChoicesShareThePrefillAndSampleIndependently) {
  Model m = tiny_model();
  Forward fwd(m);
  Engine eng(fwd, {});
  SamplingParams sp;
  sp.temperature = 1.0f;
  sp.seed = 5;
  const auto p = prompt_of(20, 1);
  auto multi = std::make_shared<Collected>();
  eng.submit(collect(multi, p, sp, 12, 4));
  eng.run_until_idle();
  EXPECT_EQ(multi->usage.prompt_tokens, 20);
  EXPECT_EQ(multi->usage.completion_tokens, 48);
  EXPECT_EQ(eng.stats().prefilled_tokens, 20);  // once, not 4 times
  EXPECT_EQ(multi->tokens[0], plain(fwd, p, sp, 12));
  for (int i = 1; i < 4; i++) EXPECT_NE(multi->tokens[size_t(i)], multi->tokens[0]) << i;
}

TEST(Engine, CancelQueueLimitAndRefusals) {
  Model m = tiny_model();
  Forward fwd(m);
  EngineOptions o;
  o.parallel = 2;
  o.max_queue = 1;
  Engine eng(fwd, o);
  SamplingParams greedy;
  greedy.temperature = 0;
  std::vector<std::shared_ptr<Collected>> c;
  std::vector<uint64_t> ids;
  for (int i = 0; i < 4; i++) {
    c.push_back(std::make_shared<Collected>());
    ids.push_back(eng.submit(collect(c.back(), prompt_of(4, i), greedy, 8)));
  }
  EXPECT_NE(ids[2], 0u);  // 2 free slots + a queue of 1
  EXPECT_EQ(ids[3], 0u);  // refused (HTTP 429)
  EXPECT_EQ(eng.stats().requests_rejected, 1);
  eng.cancel(ids[1]);
  eng.run_until_idle();
  EXPECT_EQ(c[0]->reasons[0], "length");
  EXPECT_EQ(c[1]->reasons[0], "cancelled");
  EXPECT_TRUE(c[1]->tokens[0].empty());
  EXPECT_EQ(c[2]->reasons[0], "length");
  EXPECT_EQ(eng.stats().requests_cancelled, 1);
  // a request that can never fit is an error naming the flag
  o.kv_cache_bytes = 1 << 16;
  Engine tight(fwd, o);
  EXPECT_NE(tight.check_fits(100, 900, 1).find("--kv-cache-mib"), std::string::npos);
  EXPECT_NE(tight.check_fits(1, 1, 3).find("--parallel"), std::string::npos);
  EXPECT_THROW(tight.submit(collect(std::make_shared<Collected>(), prompt_of(100, 0), greedy, 900)), Error);
}

// The engine thread: requests from several threads, results equal to plain decoding.
TEST(Engine, ThreadedEngineServesConcurrentSubmitters) {
  Model m = tiny_model();
  Forward fwd(m);
  Engine eng(fwd, {});
  eng.start();
  SamplingParams greedy;
  greedy.temperature = 0;
  std::vector<std::shared_ptr<Collected>> c(8);
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; i++)
    ts.emplace_back([&, i] {
      c[size_t(i)] = std::make_shared<Collected>();
      eng.submit(collect(c[size_t(i)], prompt_of(5 + i, i), greedy, 10));
    });
  for (auto& t : ts) t.join();
  for (int k = 0; k < 500 && !eng.idle(); k++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  eng.stop();
  for (int i = 0; i < 8; i++) {
    ASSERT_TRUE(c[size_t(i)]->done) << i;
    EXPECT_EQ(c[size_t(i)]->tokens[0], plain(fwd, prompt_of(5 + i, i), greedy, 10)) << i;
  }
}

TEST(Engine, LogprobsAndPenaltiesByHand) {
  const std::vector<float> l = {1.0f, 3.0f, -2.0f, 0.5f};
  const EngineToken t = token_logprobs(l.data(), 4, 3, 2);
  double z = 0;
  for (float v : l) z += std::exp(double(v));
  EXPECT_NEAR(t.logprob, 0.5 - std::log(z), 1e-6);
  ASSERT_EQ(t.top.size(), 2u);
  EXPECT_EQ(t.top[0].token, 1);
  EXPECT_NEAR(t.top[0].logprob, 3.0 - std::log(z), 1e-6);
  EXPECT_EQ(t.top[1].token, 0);
  std::vector<float> p = {1.0f, 1.0f, 1.0f};
  apply_frequency_presence(p.data(), 3, {0, 0, 2}, 0.5f, 0.25f);
  EXPECT_FLOAT_EQ(p[0], 1.0f - 2 * 0.5f - 0.25f);
  EXPECT_FLOAT_EQ(p[1], 1.0f);
  EXPECT_FLOAT_EQ(p[2], 1.0f - 0.5f - 0.25f);
}

}  // namespace
}  // namespace dseek
