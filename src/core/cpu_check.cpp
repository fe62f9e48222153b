// Compiled for baseline x86-64: refuses, with a message, CPUs below the build's x86-64-v3 baseline
// before any AVX2 code runs.
#include <cstdio>
#include <cstdlib>

namespace {
__attribute__((constructor(101))) void dseek_check_cpu_baseline() {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    std::fputs("dseek: error: this CPU lacks AVX2/FMA (x86-64-v3), which this build requires\n", stderr);
    std::exit(1);
  }
}
}  // namespace
