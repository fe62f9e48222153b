// Training speed on bench-small: batch 8 x 256, the full objective (main + MTP + balance loss), backward,
// clipping, AdamW, routing-bias update; F32 and BF16 products (F32 master weights). Run with --threads N.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstring>

#include "bench_util.h"
#include "core/rng.h"
#include "core/threads.h"
#include "kernels/matmul.h"
#include "train/balance.h"
#include "train/graph.h"
#include "train/mixed_precision.h"
#include "train/optimizer.h"

namespace dseek {
namespace {

constexpr int64_t kB = 8, kT = 256;

double flops_per_token(const Model& m) {
  const ModelConfig& c = m.config;
  double params = 0;
  for_each_param(c, const_cast<ModelWeights&>(m.w), [&](ParamRef& p) {
    if (p.role != ParamRole::Matrix && p.role != ParamRole::Router) return;
    double n = double(shape_numel(p.shape));
    if (p.name.find(".mlp.experts.") != std::string::npos) n *= double(c.num_experts_per_tok) / double(c.n_routed_experts);
    params += n;
  });
  params += double(c.vocab_size * c.hidden_size) * double(m.w.mtp.size());  // the shared head, again for MTP
  const double layers = double(c.num_hidden_layers + int64_t(m.w.mtp.size()));
  const double attn = 2.0 * double(c.num_attention_heads) * double(c.qk_head_dim() + c.v_head_dim) * double(kT + 1) / 2 * layers;
  return 3.0 * (2.0 * params + attn);
}

double gemm_peak(Precision p) {
  const int64_t M = 512, K = 512, N = 1408;
  std::vector<float> a(size_t(M * K), 0.5f), b(size_t(N * K), 0.25f), c(size_t(M * N));
  for (int i = 0; i < 3; i++) gemm(false, true, M, N, K, 1, a.data(), K, b.data(), K, 0, c.data(), N, p);
  auto t0 = std::chrono::steady_clock::now();
  int it = 0;
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 0.5) {
    gemm(false, true, M, N, K, 1, a.data(), K, b.data(), K, 0, c.data(), N, p);
    it++;
  }
  return 2.0 * M * N * K * it / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void BM_TrainStep(benchmark::State& state, TrainPrecision tp, bool pow2) {
  PrecisionSettings ps;
  ps.precision = tp;
  ps.fp8_pow2_scales = pow2;
  const Precision prec = ps.products();
  Model m = Model::random(ModelConfig::load(bench::bench_config_path()), 0);
  const ModelConfig& c = m.config;
  ModelWeights grads = zeros_like_weights(c, true);
  OptimizerConfig oc;
  oc.lr = 3e-4;
  AdamW opt(oc, c, m.w, grads);
  MixedPrecision mixed(ps, c, m.w);
  TrainGraph graph(c);
  GraphOptions go;
  go.layer.precision = prec;
  go.layer.fp8_activations = ps.fp8_activations();
  go.layer.aux_alpha = 1e-4;
  Rng r(1);
  std::vector<int32_t> tokens(size_t(kB * (kT + 1)));
  auto step = [&] {
    for (auto& t : tokens) t = int32_t(r.below(uint64_t(c.vocab_size)));
    MicroBatch mb = MicroBatch::from_tokens(tokens.data(), kB, kT);
    opt.zero_grads();
    go.loss_scale = mixed.loss_scale();
    LossBreakdown lb = graph.run(mixed.compute(), &grads, m.rope, mb, go);
    if (mixed.unscale(opt, 1)) opt.step(oc.lr);
    update_routing_bias(m.w, lb.load, 1e-3);
    mixed.refresh();
    return lb.total;
  };
  step();  // warm-up: JIT-compiled kernels for these shapes
  for (auto _ : state) benchmark::DoNotOptimize(step());
  const double tokens_per_s = double(state.iterations() * kB * kT);
  state.counters["tokens_per_s"] = benchmark::Counter(tokens_per_s, benchmark::Counter::kIsRate);
  // MFU: model FLOPs per second over the measured GEMM peak of the same precision
  state.counters["model_flops_per_token"] = flops_per_token(m);
  state.counters["gemm_peak_GFLOPs"] = gemm_peak(prec) / 1e9;
  state.counters["peak_rss_MiB"] = bench::peak_rss_mib();
}

BENCHMARK_CAPTURE(BM_TrainStep, f32, TrainPrecision::F32, false)->Unit(benchmark::kMillisecond)->MinTime(10.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, bf16, TrainPrecision::BF16, false)->Unit(benchmark::kMillisecond)->MinTime(10.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, fp8, TrainPrecision::FP8, false)->Unit(benchmark::kMillisecond)->MinTime(10.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, fp8_pow2, TrainPrecision::FP8, true)->Unit(benchmark::kMillisecond)->MinTime(10.0)->UseRealTime();
BENCHMARK_CAPTURE(BM_TrainStep, fp16, TrainPrecision::F16, false)->Unit(benchmark::kMillisecond)->MinTime(10.0)->UseRealTime();

}  // namespace
}  // namespace dseek

int main(int argc, char** argv) { return dseek::bench::run_benchmarks(argc, argv); }
