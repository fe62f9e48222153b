// Shared pieces of the benchmarks: the benchmark model (bench-small with random weights, written once per
// dtype into a cache folder and loaded memory-mapped as users load it) and process memory figures.
#pragma once
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/fileio.h"
#include "core/memory.h"
#include "core/threads.h"
#include "model/model.h"
#include "model/quantize.h"

namespace dseek::bench {

inline std::string source_dir() {
#ifdef DSEEK_SOURCE_DIR
  return DSEEK_SOURCE_DIR;
#else
  return ".";
#endif
}

// DSEEK_BENCH_CONFIG overrides ../shared/configs/bench-small.json (the project keeps a copy in configs/).
inline std::string bench_config_path() {
  if (const char* p = std::getenv("DSEEK_BENCH_CONFIG")) return p;
  return source_dir() + "/configs/bench-small.json";
}

inline std::string bench_model_dir(DType dt) {
  const char* base = std::getenv("DSEEK_BENCH_CACHE");
  // one folder per config file and dtype: bench-small-f32, bench-qwen2-bf16, ...
  const std::string config = bench_config_path();
  std::string stem = config.substr(config.find_last_of('/') + 1);
  stem = stem.substr(0, stem.rfind(".json"));
  const char* suffix = dt == DType::BF16 ? "bf16" : dt == DType::F8_E4M3 ? "fp8" : "f32";
  std::string dir = std::string(base ? base : "/tmp/dseek-bench") + "/" + stem + "-" + suffix;
  if (!file_exists(path_join(dir, "config.json"))) {
    if (dt == DType::F8_E4M3) {  // as `dseek quantize --to fp8` writes it: E4M3 projections, the rest BF16
      Model m = Model::random(ModelConfig::load(bench_config_path()), 0, DType::F32);
      quantize_model_fp8(m);
      m.save(dir, DType::BF16);
    } else {
      Model m = Model::random(ModelConfig::load(bench_config_path()), 0, dt);
      m.save(dir, dt);
    }
  }
  return dir;
}

// The benchmark model of one dtype, loaded once per process (memory-mapped, as users load it).
inline Model& cached_model(DType dt) {
  static std::unique_ptr<Model> f32, bf16, fp8;
  auto& slot = dt == DType::BF16 ? bf16 : dt == DType::F8_E4M3 ? fp8 : f32;
  if (!slot) slot = std::make_unique<Model>(Model::load(bench_model_dir(dt)));
  return *slot;
}

using dseek::peak_rss_mib;

// The benches' main(): --threads N is ours (0 = all cores); the rest goes to Google Benchmark.
inline int run_benchmarks(int argc, char** argv) {
  int threads = 0;
  std::vector<char*> rest;
  for (int i = 0; i < argc; i++) {
    if (std::strcmp(argv[i], "--threads") == 0 && i + 1 < argc) threads = std::atoi(argv[++i]);
    else rest.push_back(argv[i]);
  }
  set_num_threads(threads);
  int n = int(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

}  // namespace dseek::bench
