// Why the FP8 recipe promotes partial sums and scales per tile.
//
// Promotion promotes partial sums to F32 (DeepSeek-V3 report, section 3.3.2): dot products of E4M3
// values accumulated with a narrow accumulator (13 explicit mantissa bits, about the 14 bits the report measured on
// H800 tensor cores), without promotion and promoted into an F32 sum every 128 products. The counter rel_error is
// |sum - exact| / exact averaged over 64 dot products of positive operands (the worst case: no cancellation).
//   bench_fp8_promotion --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cmath>
#include <vector>

#include "bench_util.h"
#include "core/rng.h"
#include "kernels/lowp.h"
#include "kernels/matmul.h"

namespace dseek {
namespace {

void BM_Fp8DotAccumulation(benchmark::State& state) {
  const int64_t K = state.range(0), interval = state.range(1) ? state.range(1) : K;
  const int bits = int(state.range(2));
  double err = 0;
  int n = 0;
  for (auto _ : state) {
    err = 0;
    n = 0;
    for (uint64_t t = 0; t < 64; t++) {
      std::vector<float> a(static_cast<size_t>(K)), b(static_cast<size_t>(K));
      double exact = 0;
      for (int64_t k = 0; k < K; k++) {
        a[size_t(k)] = e4m3_round(float(std::fabs(normal_at(t, 1, uint64_t(k)))) * 64);
        b[size_t(k)] = e4m3_round(float(std::fabs(normal_at(t, 2, uint64_t(k)))) * 64);
        exact += double(a[size_t(k)]) * b[size_t(k)];
      }
      err += std::fabs(double(fp8_dot_limited(a.data(), b.data(), K, bits, interval)) - exact) / exact;
      n++;
    }
  }
  state.counters["rel_error"] = err / n;
}

BENCHMARK(BM_Fp8DotAccumulation)
    ->ArgNames({"K", "promote_every", "mantissa_bits"})
    ->ArgsProduct({{512, 1024, 2048, 4096, 8192}, {0, 128}, {13}})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

// The case fine-grained scaling is for (DeepSeek-V3 report, section 3.3.2): activations with a few outlier
// channels, as large language models have. X [2048, 512] ~ N(0, 1) with 4 channels multiplied by `outlier`,
// W [512, 512] ~ N(0, 0.02); counters: DeepGEMM's ||y - y32||^2 / (||y||^2 + ||y32||^2) of the Fprop Y = X W^T
// with X quantised per 1x128 tile or per tensor (W per 128x128 block either way), the relative RMS error of the
// ordinary channels' values and the share of X's values that became 0.
void BM_ActivationOutliers(benchmark::State& state) {
  const int64_t R = 2048, K = 512, N = 512;
  const float outlier = float(state.range(0));
  const bool per_tensor = state.range(1);
  std::vector<float> x(static_cast<size_t>(R * K)), w(static_cast<size_t>(N * K));
  for (int64_t i = 0; i < R * K; i++) {
    x[size_t(i)] = float(normal_at(7, 0, uint64_t(i)));
    if (i % K == 3 || i % K == 100 || i % K == 260 || i % K == 411) x[size_t(i)] *= outlier;
  }
  for (int64_t i = 0; i < N * K; i++) w[size_t(i)] = float(normal_at(7, 1, uint64_t(i))) * 0.02f;
  std::vector<float> xq(x.size()), wq(w.size()), y(static_cast<size_t>(R * N)), y32(y.size());
  LowpCounts counts;
  for (auto _ : state) {
    counts.reset();
    if (per_tensor) fp8_round_tensor(x.data(), R, K, K, xq.data(), K, false, &counts);
    else fp8_round_rows(x.data(), R, K, K, xq.data(), K, 128, false, &counts);
    std::vector<uint8_t> codes(w.size());
    std::vector<float> sc(16);
    fp8_quantize_blocks(w.data(), N, K, K, 128, 128, false, codes.data(), sc.data());
    for (int64_t i = 0; i < N * K; i++) wq[size_t(i)] = fp8e4m3_to_f32(codes[size_t(i)]) * sc[size_t((i / K / 128) * 4 + (i % K) / 128)];
    gemm(false, true, R, N, K, 1.0f, xq.data(), K, wq.data(), K, 0.0f, y.data(), N);
    gemm(false, true, R, N, K, 1.0f, x.data(), K, w.data(), K, 0.0f, y32.data(), N);
  }
  double num = 0, den = 0;
  for (size_t i = 0; i < y.size(); i++) {
    num += (double(y[i]) - y32[i]) * (double(y[i]) - y32[i]);
    den += double(y[i]) * y[i] + double(y32[i]) * y32[i];
  }
  double en = 0, ed = 0;  // relative error of the ordinary channels' values
  for (int64_t i = 0; i < R * K; i++) {
    const int64_t c = i % K;
    if (c == 3 || c == 100 || c == 260 || c == 411) continue;
    en += (double(xq[size_t(i)]) - x[size_t(i)]) * (double(xq[size_t(i)]) - x[size_t(i)]);
    ed += double(x[size_t(i)]) * x[size_t(i)];
  }
  state.counters["gemm_diff"] = num / den;
  state.counters["x_rel_rms_error"] = std::sqrt(en / ed);
  state.counters["x_underflow"] = double(counts.underflow.load()) / double(counts.values.load());
}

BENCHMARK(BM_ActivationOutliers)
    ->ArgNames({"outlier", "per_tensor"})
    ->ArgsProduct({{1, 100, 1000, 10000, 100000}, {0, 1}})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dseek

int main(int argc, char** argv) { return dseek::bench::run_benchmarks(argc, argv); }
