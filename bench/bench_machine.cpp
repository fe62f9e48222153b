// The machine's limits: DRAM read bandwidth (streaming sum over 1 GiB) and the GEMM FLOP/s of the backend
// (oneDNN) in F32 and BF16 on a bench-small-like shape. Run with --threads N.
#include <benchmark/benchmark.h>
#include <omp.h>

#include <cstring>
#include <vector>

#include "bench_util.h"
#include "core/tensor.h"
#include "core/threads.h"
#include "kernels/matmul.h"

namespace dseek {
namespace {

void BM_ReadBandwidth(benchmark::State& state) {
  const size_t n = size_t(1) << 28;  // 1 GiB of floats
  std::vector<float> v(n, 1.0f);
  double total = 0;
  for (auto _ : state) {
    double sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (size_t b = 0; b < n; b += 4096) {
      float acc[16] = {};
      for (size_t i = b; i < b + 4096; i += 16)
#pragma omp simd
        for (int k = 0; k < 16; k++) acc[k] += v[i + k];
      for (float a : acc) sum += a;
    }
    total += sum;
  }
  benchmark::DoNotOptimize(total);
  state.counters["GB_per_s"] = benchmark::Counter(double(state.iterations()) * double(n) * 4 / 1e9, benchmark::Counter::kIsRate);
}

void BM_Gemm(benchmark::State& state, Precision p) {
  const int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  std::vector<float> a(size_t(M * K), 0.5f), b(size_t(N * K), 0.25f), c(size_t(M * N));
  std::vector<uint16_t> a16(a.size()), b16(b.size());
  f32_to_bf16_rows(a.data(), M, K, K, a16.data(), K);
  f32_to_bf16_rows(b.data(), N, K, K, b16.data(), K);
  for (auto _ : state) {
    if (p == Precision::F32) gemm(false, true, M, N, K, 1.0f, a.data(), K, b.data(), K, 0.0f, c.data(), N);
    else gemm_bf16(false, true, M, N, K, 1.0f, a16.data(), K, b16.data(), K, 0.0f, c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  state.counters["GFLOP_per_s"] = benchmark::Counter(double(state.iterations()) * 2.0 * M * N * K / 1e9, benchmark::Counter::kIsRate);
}

BENCHMARK(BM_ReadBandwidth)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK_CAPTURE(BM_Gemm, f32, Precision::F32)->Args({512, 512, 1408})->Args({2048, 512, 2048})->MinTime(1.0);
BENCHMARK_CAPTURE(BM_Gemm, bf16, Precision::BF16)->Args({512, 512, 1408})->Args({2048, 512, 2048})->MinTime(1.0);

}  // namespace
}  // namespace dseek

int main(int argc, char** argv) { return dseek::bench::run_benchmarks(argc, argv); }
