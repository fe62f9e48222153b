// Baseline GEMV (x86-64-v3: AVX2, FMA, F16C): one weight row at a time, read front to back, against up to 8
// activation rows; weights widened to F32 in registers (BF16: shift; F16: vcvtph2ps; FP8 E4M3: exponent rebias
// by 2^120, then the block scale). The last K % 8 columns are widened through MatRef::rows_to_f32.
#include "kernels/gemv.h"

#include <immintrin.h>

#include <vector>

namespace dseek {

namespace {

struct F32W {
  static __m256 load(const void* p, int64_t k) { return _mm256_loadu_ps(static_cast<const float*>(p) + k); }
};
struct BF16W {
  static __m256 load(const void* p, int64_t k) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + k));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};
struct F16W {
  static __m256 load(const void* p, int64_t k) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(p) + k)));
  }
};
struct FP8W {
  // E4M3 bits s eeee mmm: placing eeeemmm at float bits 20..26 gives 2^(e-127) (1.m); times 2^120 = 2^(e-7) (1.m),
  // subnormals included.
  static __m256 load(const void* p, int64_t k) {
    const __m128i b = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const uint8_t*>(p) + k));
    const __m256i v = _mm256_cvtepu8_epi32(b);
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x80)), 24);
    const __m256i em = _mm256_slli_epi32(_mm256_and_si256(v, _mm256_set1_epi32(0x7f)), 20);
    const __m256 mag = _mm256_mul_ps(_mm256_castsi256_ps(em), _mm256_set1_ps(0x1p120f));
    return _mm256_castsi256_ps(_mm256_or_si256(_mm256_castps_si256(mag), sign));
  }
};

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Weight row n against activation rows [m0, m0 + MM), U blocks of 8 in flight: MM * U independent FMA chains.
template <class W, int MM>
void row_dot(const GemvJob& j, int64_t n, int64_t m0) {
  constexpr int U = MM >= 8 ? 1 : (MM >= 3 ? 2 : (MM == 2 ? 4 : 8));
  const int64_t K = j.w.cols, K8 = K / 8 * 8;
  const void* row = static_cast<const uint8_t*>(j.w.data) + size_t(n) * size_t(j.w.ld) * dtype_size(j.w.dtype);
  const bool fp8 = j.w.dtype == DType::F8_E4M3;
  const float* srow = fp8 ? j.w.scale_inv + ((j.w.row0 + n) / j.w.block_rows) * j.w.scale_ld : nullptr;
  const float* x = j.x + m0 * j.ldx;
  const int64_t ldx = j.ldx;
  __m256 acc[MM][U];
#pragma GCC unroll 16
  for (int m = 0; m < MM; m++)
#pragma GCC unroll 16
    for (int u = 0; u < U; u++) acc[m][u] = _mm256_setzero_ps();
  auto block = [&](int64_t k, int u) {
    __m256 w = W::load(row, k);
    if (fp8) w = _mm256_mul_ps(w, _mm256_set1_ps(srow[(j.w.col0 + k) / j.w.block_cols]));
#pragma GCC unroll 16
    for (int m = 0; m < MM; m++) acc[m][u] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x + m * ldx + k), acc[m][u]);
  };
  int64_t k = 0;
  for (; k + 8 * U <= K8; k += 8 * U)
#pragma GCC unroll 16
    for (int u = 0; u < U; u++) block(k + 8 * u, u);
  for (; k < K8; k += 8) block(k, 0);
  float tail[8];
  if (K8 < K) j.w.col_slice(K8, K - K8).rows_to_f32(n, 1, tail);
#pragma GCC unroll 16
  for (int m = 0; m < MM; m++) {
    __m256 sum = acc[m][0];
#pragma GCC unroll 16
    for (int u = 1; u < U; u++) sum = _mm256_add_ps(sum, acc[m][u]);
    float s = hsum(sum);
    for (int64_t t = K8; t < K; t++) s += tail[t - K8] * x[m * ldx + t];
    float* y = j.y + (m0 + m) * j.ldy + n;
    *y = j.accumulate ? *y + s : s;
  }
}

template <class W>
void rows(const GemvJob& j, int64_t n0, int64_t n1) {
  for (int64_t n = n0; n < n1; n++) {
    int64_t m = 0;
    for (; m + 8 <= j.M; m += 8) row_dot<W, 8>(j, n, m);  // each weight row read once for 8 activation rows
    for (; m + 4 <= j.M; m += 4) row_dot<W, 4>(j, n, m);
    switch (j.M - m) {
      case 3: row_dot<W, 3>(j, n, m); break;
      case 2: row_dot<W, 2>(j, n, m); break;
      case 1: row_dot<W, 1>(j, n, m); break;
      default: break;
    }
  }
}

// Any dtype and FP8 block alignment: widen each weight row, then dot products.
void rows_widened(const GemvJob& j, int64_t n0, int64_t n1) {
  thread_local std::vector<float> row;
  if (row.size() < size_t(j.w.cols)) row.resize(size_t(j.w.cols));
  for (int64_t n = n0; n < n1; n++) {
    j.w.rows_to_f32(n, 1, row.data());
    for (int64_t m = 0; m < j.M; m++) {
      const float* x = j.x + m * j.ldx;
      float s = 0;
#pragma omp simd reduction(+ : s)
      for (int64_t k = 0; k < j.w.cols; k++) s += x[k] * row[size_t(k)];
      float* y = j.y + m * j.ldy + n;
      *y = j.accumulate ? *y + s : s;
    }
  }
}

}  // namespace

void gemv_rows_generic(const GemvJob& j, int64_t n0, int64_t n1) {
  switch (j.w.dtype) {
    case DType::F32: return rows<F32W>(j, n0, n1);
    case DType::BF16: return rows<BF16W>(j, n0, n1);
    case DType::F16: return rows<F16W>(j, n0, n1);
    case DType::F8_E4M3:
      // a block of 8 columns must share one scale
      if (j.w.block_cols % 8 == 0 && j.w.col0 % 8 == 0) return rows<FP8W>(j, n0, n1);
      return rows_widened(j, n0, n1);
    default: return rows_widened(j, n0, n1);
  }
}

}  // namespace dseek
