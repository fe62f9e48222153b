// Element types of tensors and checkpoint files, and scalar conversions between them.
#pragma once
#include <cstdint>
#include <array>
#include <cstring>
#include <optional>
#include <string_view>

namespace dseek {

enum class DType : uint8_t { F32, F16, BF16, F8_E4M3, F64, I64, I32, I16, I8, U8, BOOL };

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);  // safetensors spelling: "F32", "BF16", "F8_E4M3", ...
std::optional<DType> dtype_from_name(std::string_view name);
bool dtype_is_float(DType t);

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Round to nearest even; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// OCP FP8 E4M3 ("e4m3fn"): bias 7, no infinities, 0x7f/0xff are NaN, max finite 448.
extern const std::array<float, 256> kFp8E4M3ToF32;
inline float fp8e4m3_to_f32(uint8_t b) { return kFp8E4M3ToF32[b]; }
uint8_t f32_to_fp8e4m3(float f);  // round to nearest even, saturating to +-448

// Convert n elements of any float dtype to f32 (FP8 without scaling).
void convert_to_f32(DType src_type, const void* src, float* dst, size_t n);
// Convert n f32 values to a float dtype.
void convert_from_f32(const float* src, DType dst_type, void* dst, size_t n);

}  // namespace dseek
