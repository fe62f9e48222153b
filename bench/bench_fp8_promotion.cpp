// Why the FP8 recipe promotes partial sums to F32 (DeepSeek-V3 report, section 3.3.2): dot products of E4M3
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

}  // namespace
}  // namespace dseek

int main(int argc, char** argv) { return dseek::bench::run_benchmarks(argc, argv); }
