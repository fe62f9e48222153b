// GRPO throughput on bench-small: rollouts (P prompts x G = 8 sampled completions, batched over the group on
// the latent KV cache, as `dseek grpo` samples) beside the plain one-sequence generate path, and the policy
// update (reference log-probs, then forward + backward of the clipped surrogate with k3 KL, AdamW) on the same
// samples. Prompt 64 tokens, completions 128 tokens (random weights: no EOS stop). Run with --threads N.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstring>

#include "bench_util.h"
#include "core/rng.h"
#include "core/threads.h"
#include "inference/batch_generator.h"
#include "inference/generator.h"
#include "posttrain/grpo_loss.h"
#include "train/graph.h"
#include "train/mixed_precision.h"
#include "train/optimizer.h"

namespace dseek {
namespace {

constexpr int64_t kPrompt = 64, kCompletion = 128, kGroup = 8, kMicroBatch = 16;

std::vector<int32_t> random_prompt(uint64_t seed) {
  Rng r(seed);
  std::vector<int32_t> p;
  for (int64_t i = 0; i < kPrompt; i++) p.push_back(int32_t(2 + r.below(8000)));
  return p;
}

// The plain path of `dseek generate`: one sequence, prefill then one decode step per token.
void BM_Generate(benchmark::State& state, DType dt) {
  Forward fwd(bench::cached_model(dt));
  Generator gen(fwd);
  StopConditions stop;
  stop.max_tokens = kCompletion;
  int64_t tokens = 0;
  uint64_t seed = 0;
  for (auto _ : state) {
    Sampler s(SamplingParams{.temperature = 1.0f, .seed = ++seed});
    tokens += gen.generate(random_prompt(seed), s, stop, [](int32_t) { return true; }).generated_tokens;
  }
  state.counters["completion_tokens_per_s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsRate);
}

// GRPO rollouts: P prompts, G = 8 completions each (one prefill per prompt, caches copied).
void BM_Rollout(benchmark::State& state, DType dt) {
  const int64_t P = state.range(0);
  Forward fwd(bench::cached_model(dt));
  BatchGenerator gen(fwd);
  int64_t tokens = 0, samples = 0;
  uint64_t seed = 0;
  for (auto _ : state) {
    std::vector<GenerationRequest> reqs;
    for (int64_t p = 0; p < P; p++) {
      const std::vector<int32_t> prompt = random_prompt(++seed);
      for (int64_t g = 0; g < kGroup; g++) {
        GenerationRequest r;
        r.prompt = prompt;
        r.sampling.temperature = 1.0f;
        r.sampling.seed = seed * 100 + uint64_t(g);
        r.stop.max_tokens = kCompletion;
        reqs.push_back(std::move(r));
      }
    }
    BatchStats bs;
    gen.generate(reqs, nullptr, &bs);
    tokens += bs.generated_tokens;
    samples += int64_t(reqs.size());
  }
  state.counters["completion_tokens_per_s"] = benchmark::Counter(double(tokens), benchmark::Counter::kIsRate);
  state.counters["samples_per_s"] = benchmark::Counter(double(samples), benchmark::Counter::kIsRate);
}

// One GRPO update on P x G samples: reference log-probs (forward), then the surrogate's forward + backward over
// micro-batches of 16 sequences, AdamW, and the BF16 copy refresh when products are BF16.
void BM_Update(benchmark::State& state, Precision prec) {
  const int64_t P = state.range(0), N = P * kGroup, T = kPrompt + kCompletion - 1;
  Model policy = Model::random(ModelConfig::load(bench::bench_config_path()), 0);
  Model reference = Model::random(ModelConfig::load(bench::bench_config_path()), 0);
  const ModelConfig& c = policy.config;
  ModelWeights grads = zeros_like_weights(c, true);  // AdamW walks every tensor, MTP included
  OptimizerConfig oc;
  oc.lr = 1e-6;
  oc.weight_decay = 0.0;
  AdamW opt(oc, c, policy.w, grads);
  PrecisionSettings ps;
  ps.precision = prec == Precision::BF16 ? TrainPrecision::BF16 : TrainPrecision::F32;
  MixedPrecision mixed(ps, c, policy.w);
  const ModelWeights& compute = mixed.compute();
  TrainGraph graph(c);
  GraphOptions go;
  go.layer.precision = prec;
  go.use_mtp = false;
  GrpoLossConfig lc;
  Rng r(3);
  std::vector<MicroBatch> batches;
  std::vector<double> adv(static_cast<size_t>(N));
  for (auto& a : adv) a = r.uniform() - 0.5;
  for (int64_t i = 0; i < N; i += kMicroBatch) {
    std::vector<int32_t> tokens(size_t(kMicroBatch * (T + 1)));
    for (auto& t : tokens) t = int32_t(2 + r.below(8000));
    MicroBatch mb = MicroBatch::from_tokens(tokens.data(), kMicroBatch, T);
    for (int64_t b = 0; b < kMicroBatch; b++)
      for (int64_t t = 0; t < kPrompt - 1; t++) mb.targets[size_t(b * T + t)] = -1;  // prompt tokens: no loss
    batches.push_back(std::move(mb));
  }
  const double completion_tokens = double(N * kCompletion);
  auto step = [&] {
    std::vector<std::vector<float>> lp_ref(batches.size());
    for (size_t i = 0; i < batches.size(); i++) {
      GraphOptions fo = go;
      fo.logp_out = &lp_ref[i];
      TrainGraph(c).run(reference.w, nullptr, reference.rope, batches[i], fo);
    }
    opt.zero_grads();
    double loss = 0;
    for (size_t i = 0; i < batches.size(); i++) {
      GraphOptions uo = go;
      uo.policy = [&](int64_t row, float lp) -> std::pair<double, double> {
        const TokenLoss tl = grpo_token_loss(lp, lp, lp_ref[i][size_t(row)], adv[i * kMicroBatch + size_t(row / T)],
                                             1.0 / completion_tokens, lc);
        return {tl.loss, tl.dlogp};
      };
      loss += graph.run(compute, &grads, policy.rope, batches[i], uo).total;
    }
    opt.step(oc.lr);
    mixed.refresh();
    return loss;
  };
  step();  // warm-up: JIT-compiled kernels for these shapes
  for (auto _ : state) benchmark::DoNotOptimize(step());
  state.counters["completion_tokens_per_s"] =
      benchmark::Counter(completion_tokens * double(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["samples_per_s"] = benchmark::Counter(double(N * state.iterations()), benchmark::Counter::kIsRate);
}

BENCHMARK_CAPTURE(BM_Generate, f32, DType::F32)->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Generate, bf16, DType::BF16)->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Rollout, f32, DType::F32)->Arg(1)->Arg(16)->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Rollout, bf16, DType::BF16)->Arg(1)->Arg(16)->Unit(benchmark::kMillisecond)->MinTime(3.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Update, f32, Precision::F32)->Arg(4)->Unit(benchmark::kMillisecond)->MinTime(5.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_Update, bf16, Precision::BF16)->Arg(4)->Unit(benchmark::kMillisecond)->MinTime(5.0)->UseRealTime();

}  // namespace
}  // namespace dseek

int main(int argc, char** argv) { return dseek::bench::run_benchmarks(argc, argv); }
