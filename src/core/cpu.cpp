#include "core/cpu.h"

#include <cpuid.h>

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
    // CPUID.(EAX=7,ECX=0):EDX bit 22 (read directly: clang 14 does not know "amx-bf16" as a builtin feature name)
    unsigned a = 0, b = 0, c = 0, d = 0;
    f.amx_bf16 = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 22 & 1u);
    const char* isa = std::getenv("DSEEK_ISA");
    if (isa && std::strcmp(isa, "generic") == 0) f.avx512 = f.avx512_bf16 = f.amx_bf16 = false;
    return f;
  }();
  return features;
}

}  // namespace dseek
