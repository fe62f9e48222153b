#include "core/cpu.h"

#include <cstdlib>
#include <cstring>

namespace dseek {

std::string CpuFeatures::describe() const {
  std::string s = "avx2";
  if (avx512) s += " avx512";
  if (avx512_bf16) s += " avx512_bf16";
  if (amx_bf16) s += " amx_bf16";
  return s;
}

const CpuFeatures& cpu() {
  static const CpuFeatures features = [] {
    CpuFeatures f;
    __builtin_cpu_init();
    f.avx2 = __builtin_cpu_supports("avx2");
    f.fma = __builtin_cpu_supports("fma");
    f.f16c = true;
    f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
    f.amx_bf16 = __builtin_cpu_supports("amx-bf16");
    const char* isa = std::getenv("DSEEK_ISA");
    if (isa && std::strcmp(isa, "generic") == 0) f.avx512 = f.avx512_bf16 = f.amx_bf16 = false;
    return f;
  }();
  return features;
}

}  // namespace dseek
