#include "kernels/convert.h"

#include "core/cpu.h"
#include "core/dtype.h"

namespace dseek {

void f32_to_bf16(const float* src, uint16_t* dst, size_t n) {
  if (use_avx512()) return f32_to_bf16_avx512(src, dst, n);
  for (size_t i = 0; i < n; i++) dst[i] = dseek::f32_to_bf16(src[i]);
}

void bf16_to_f32(const uint16_t* src, float* dst, size_t n) {
  if (use_avx512()) return bf16_to_f32_avx512(src, dst, n);
#pragma omp simd
  for (size_t i = 0; i < n; i++) {
    uint32_t u = uint32_t(src[i]) << 16;
    __builtin_memcpy(dst + i, &u, 4);
  }
}

}  // namespace dseek
