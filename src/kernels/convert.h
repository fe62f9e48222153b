// Bulk dtype conversions for activations (vectorised; AVX-512 BF16 where available).
#pragma once
#include <cstddef>
#include <cstdint>

namespace dseek {

void f32_to_bf16(const float* src, uint16_t* dst, size_t n);
void bf16_to_f32(const uint16_t* src, float* dst, size_t n);
void f32_to_bf16_avx512(const float* src, uint16_t* dst, size_t n);
void bf16_to_f32_avx512(const uint16_t* src, float* dst, size_t n);

}  // namespace dseek
