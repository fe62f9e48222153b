// Inference speed on bench-small (or DSEEK_BENCH_CONFIG, e.g. configs/bench-qwen2.json): prefill of a 512-token prompt and batch-1 decode at 512 tokens of context,
// F32, BF16 and FP8 (E4M3 projections with 128 x 128 block scales, head BF16) weights. Run one configuration per process for a meaningful peak RSS, e.g.
//   bench_inference --benchmark_filter='BM_Decode/bf16' --threads 2
#include <benchmark/benchmark.h>

#include <cstring>

#include "bench_util.h"
#include "core/rng.h"
#include "core/threads.h"
#include "inference/forward.h"

namespace dseek {
namespace {

constexpr int64_t kPrompt = 512;

struct Loaded {
  Model& model;
  std::vector<int32_t> prompt;
};

Loaded loaded(DType dt) {
  Loaded l{bench::cached_model(dt), {}};
  Rng r(1);
  for (int64_t i = 0; i < kPrompt; i++) l.prompt.push_back(int32_t(2 + r.below(uint64_t(l.model.config.vocab_size - 2))));
  return l;
}

// Weight bytes per token. Decode streams every active matrix (routed experts: top-k of n), the head and one embedding
// row per token; a prefill forward reads every matrix once (all experts receive rows) for its kPrompt tokens.
// FP8 checkpoints keep the head in BF16 (as DeepSeek-V3 ships them): one byte per projection weight, two per head one.
double weight_bytes_per_token(const Model& m, DType dt, bool decode) {
  const ModelConfig& c = m.config;
  const double embed = double(c.vocab_size) * double(c.hidden_size);
  const double params = double(m.parameter_count(decode)) - (c.tie_word_embeddings ? 0.0 : embed);
  const double bytes = dt == DType::F8_E4M3 ? (params - embed) + 2.0 * embed : params * double(dtype_size(dt));
  return bytes / (decode ? 1.0 : double(kPrompt));
}

void counters(benchmark::State& state, const Model& m, double tokens, DType dt, bool decode) {
  state.counters["tokens_per_s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  // weight bytes streamed per second, to set against bench_machine's DRAM read bandwidth (every run reports the same
  // counters: the CSV reporter needs one header)
  const double bytes = weight_bytes_per_token(m, dt, decode);
  state.counters["weight_MB_per_token"] = bytes / 1e6;
  state.counters["weight_GB_per_s"] = benchmark::Counter(tokens * bytes / 1e9, benchmark::Counter::kIsRate);
  state.counters["peak_rss_MiB"] = bench::peak_rss_mib();
  const ModelConfig& c = m.config;
  // latent cache vs standard multi-head attention with the same heads (K: heads x qk dim, V: heads x v dim)
  state.counters["kv_bytes_per_token"] = double(c.num_hidden_layers * c.kv_cache_dim() * 4);
  state.counters["mha_kv_bytes_per_token"] =
      double(c.num_hidden_layers * c.num_attention_heads * (c.qk_head_dim() + c.v_head_dim) * 4);
}

void BM_Prefill(benchmark::State& state, DType dt) {
  Loaded L = loaded(dt);
  Forward fwd(L.model);
  std::vector<float> logits(static_cast<size_t>(L.model.config.vocab_size));
  {  // warm-up: JIT-compiled kernels for these shapes
    KVCache cache = fwd.new_cache(kPrompt);
    fwd.run({SeqChunk{&cache, L.prompt.data(), kPrompt}}, false, logits.data());
  }
  for (auto _ : state) {
    KVCache cache = fwd.new_cache(kPrompt);
    fwd.run({SeqChunk{&cache, L.prompt.data(), kPrompt}}, false, logits.data());
    benchmark::DoNotOptimize(logits.data());
  }
  counters(state, L.model, double(state.iterations() * kPrompt), dt, false);
}

void BM_Decode(benchmark::State& state, DType dt) {
  Loaded L = loaded(dt);
  Forward fwd(L.model);
  std::vector<float> logits(static_cast<size_t>(L.model.config.vocab_size));
  KVCache cache = fwd.new_cache(kPrompt + 1);
  fwd.run({SeqChunk{&cache, L.prompt.data(), kPrompt}}, false, logits.data());
  Rng r(2);
  for (auto _ : state) {
    int32_t tok = int32_t(2 + r.below(8000));  // a different token (and experts) each step
    cache.set_length(kPrompt);                 // context stays at 512 tokens
    fwd.run({SeqChunk{&cache, &tok, 1}}, false, logits.data());
    benchmark::DoNotOptimize(logits.data());
  }
  counters(state, L.model, double(state.iterations()), dt, true);
}

BENCHMARK_CAPTURE(BM_Prefill, f32, DType::F32)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_CAPTURE(BM_Prefill, bf16, DType::BF16)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_CAPTURE(BM_Decode, f32, DType::F32)->Unit(benchmark::kMicrosecond)->MinTime(3.0);
BENCHMARK_CAPTURE(BM_Decode, bf16, DType::BF16)->Unit(benchmark::kMicrosecond)->MinTime(3.0);
BENCHMARK_CAPTURE(BM_Prefill, fp8, DType::F8_E4M3)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK_CAPTURE(BM_Decode, fp8, DType::F8_E4M3)->Unit(benchmark::kMicrosecond)->MinTime(3.0);

}  // namespace
}  // namespace dseek

int main(int argc, char** argv) { return dseek::bench::run_benchmarks(argc, argv); }
