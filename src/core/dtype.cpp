#include "core/dtype.h"

#include <immintrin.h>

#include <cmath>

#include "core/error.h"

namespace dseek {

namespace {
struct DTypeInfo {
  DType type;
  std::string_view name;
  size_t size;
  bool is_float;
};
constexpr DTypeInfo kInfo[] = {
    {DType::F32, "F32", 4, true},         {DType::F16, "F16", 2, true},  {DType::BF16, "BF16", 2, true},
    {DType::F8_E4M3, "F8_E4M3", 1, true}, {DType::F64, "F64", 8, true},  {DType::I64, "I64", 8, false},
    {DType::I32, "I32", 4, false},        {DType::I16, "I16", 2, false}, {DType::I8, "I8", 1, false},
    {DType::U8, "U8", 1, false},          {DType::BOOL, "BOOL", 1, false},
};

constexpr std::array<float, 256> make_fp8_table() {
  std::array<float, 256> v{};
  for (int b = 0; b < 256; b++) {
    int exp = (b >> 3) & 0xf, man = b & 7;
    float x;
    if (exp == 0xf && man == 7) {
      x = __builtin_nanf("");
    } else if (exp == 0) {
      x = float(man) / 512.0f;  // subnormal: 2^-6 * man/8
    } else {
      float p = 1.0f;
      for (int i = 7; i < exp; i++) p *= 2.0f;
      for (int i = exp; i < 7; i++) p /= 2.0f;
      x = p * (1.0f + float(man) / 8.0f);
    }
    v[b] = (b & 0x80) ? -x : x;
  }
  return v;
}
}  // namespace

const std::array<float, 256> kFp8E4M3ToF32 = make_fp8_table();

size_t dtype_size(DType t) { return kInfo[size_t(t)].size; }
std::string_view dtype_name(DType t) { return kInfo[size_t(t)].name; }
bool dtype_is_float(DType t) { return kInfo[size_t(t)].is_float; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& i : kInfo)
    if (i.name == name) return i.type;
  return std::nullopt;
}

float f16_to_f32(uint16_t h) { return _cvtsh_ss(h); }
uint16_t f32_to_f16(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }

uint8_t f32_to_fp8e4m3(float f) {
  if (std::isnan(f)) return 0x7f;
  uint8_t sign = std::signbit(f) ? 0x80 : 0;
  float a = std::fabs(f);
  if (a >= 448.0f) return sign | 0x7e;  // saturate
  // Candidates are the 127 non-negative finite codes; values are monotone in the code.
  int lo = 0, hi = 0x7e;
  while (lo < hi) {  // smallest code with value >= a
    int mid = (lo + hi) / 2;
    if (kFp8E4M3ToF32[mid] < a) lo = mid + 1; else hi = mid;
  }
  int code = lo;
  if (code > 0) {
    float up = kFp8E4M3ToF32[code], down = kFp8E4M3ToF32[code - 1];
    if (a - down < up - a || (a - down == up - a && ((code - 1) & 1) == 0)) code--;
  }
  return sign | uint8_t(code);
}

void convert_to_f32(DType t, const void* src, float* dst, size_t n) {
  switch (t) {
    case DType::F32: std::memcpy(dst, src, n * 4); return;
    case DType::BF16: {
      auto s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::F16: {
      auto s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; i++) dst[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::F8_E4M3: {
      auto s = static_cast<const uint8_t*>(src);
      for (size_t i = 0; i < n; i++) dst[i] = kFp8E4M3ToF32[s[i]];
      return;
    }
    case DType::F64: {
      auto s = static_cast<const double*>(src);
      for (size_t i = 0; i < n; i++) dst[i] = float(s[i]);
      return;
    }
    default: fail("cannot convert {} to F32", dtype_name(t));
  }
}

void convert_from_f32(const float* src, DType t, void* dst, size_t n) {
  switch (t) {
    case DType::F32: std::memcpy(dst, src, n * 4); return;
    case DType::BF16: {
      auto d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; i++) d[i] = f32_to_bf16(src[i]);
      return;
    }
    case DType::F16: {
      auto d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; i++) d[i] = f32_to_f16(src[i]);
      return;
    }
    case DType::F8_E4M3: {
      auto d = static_cast<uint8_t*>(dst);
      for (size_t i = 0; i < n; i++) d[i] = f32_to_fp8e4m3(src[i]);
      return;
    }
    default: fail("cannot convert F32 to {}", dtype_name(t));
  }
}

}  // namespace dseek
