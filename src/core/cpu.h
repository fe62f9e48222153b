// CPU features detected at run time; kernels choose their implementation from these.
#pragma once
#include <string>

namespace dseek {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512 = false;       // F, BW, VL, DQ
  bool avx512_bf16 = false;  // vdpbf16ps, vcvtne2ps2bf16
  bool amx_bf16 = false;
  std::string describe() const;
};

// Detected once. DSEEK_ISA=generic in the environment disables the AVX-512 kernels (for testing the fallbacks).
const CpuFeatures& cpu();
inline bool use_avx512() { return cpu().avx512 && cpu().avx512_bf16; }

}  // namespace dseek
