// AVX-512 GEMV: four weight rows at a time against up to four activation rows, weights widened to F32 in
// registers (BF16: shift; F16: vcvtph2ps; FP8 E4M3: exponent rebias by 2^120, then the block scale).
#include <immintrin.h>

#include "kernels/gemv.h"

namespace dseek {

namespace {

struct F32W {
  static __m512 load(const void* p, int64_t k, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(p) + k);
  }
};
struct BF16W {
  static __m512 load(const void* p, int64_t k, __mmask16 m) {
    __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + k);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
};
struct F16W {
  static __m512 load(const void* p, int64_t k, __mmask16 m) {
    __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + k);
    return _mm512_cvtph_ps(h);
  }
};
struct FP8W {
  static __m512 load(const void* p, int64_t k, __mmask16 m) {
    __m128i b = _mm_maskz_loadu_epi8(m, static_cast<const uint8_t*>(p) + k);
    __m512i v = _mm512_cvtepu8_epi32(b);
    __m512i sign = _mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(0x80)), 24);
    __m512i em = _mm512_slli_epi32(_mm512_and_si512(v, _mm512_set1_epi32(0x7f)), 20);
    __m512 mag = _mm512_mul_ps(_mm512_castsi512_ps(em), _mm512_set1_ps(0x1p120f));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(mag), sign));
  }
};

inline __mmask16 tail_mask(int64_t rem) { return rem >= 16 ? __mmask16(0xffff) : __mmask16((1u << rem) - 1); }

// Rows [n, n+R) of w against activation rows [m0, m0+MM).
template <class W, int R, int MM>
inline void block(const GemvJob& j, int64_t n, int64_t m0) {
  const int64_t K = j.w.cols;
  const size_t esz = dtype_size(j.w.dtype);
  const uint8_t* base = static_cast<const uint8_t*>(j.w.data);
  const bool fp8 = j.w.dtype == DType::F8_E4M3;
  __m512 acc[MM][R];
  for (int m = 0; m < MM; m++)
    for (int r = 0; r < R; r++) acc[m][r] = _mm512_setzero_ps();
  const void* rows[R];
  const float* srow[R];
  for (int r = 0; r < R; r++) {
    rows[r] = base + size_t(n + r) * size_t(j.w.ld) * esz;
    if (fp8) srow[r] = j.w.scale_inv + ((j.w.row0 + n + r) / j.w.block_rows) * j.w.scale_ld;
  }
  for (int64_t k = 0; k < K; k += 16) {
    const __mmask16 mask = tail_mask(K - k);
    __m512 wv[R];
    for (int r = 0; r < R; r++) {
      wv[r] = W::load(rows[r], k, mask);
      if (fp8) wv[r] = _mm512_mul_ps(wv[r], _mm512_set1_ps(srow[r][(j.w.col0 + k) / j.w.block_cols]));
    }
    for (int m = 0; m < MM; m++) {
      __m512 xv = _mm512_maskz_loadu_ps(mask, j.x + (m0 + m) * j.ldx + k);
      for (int r = 0; r < R; r++) acc[m][r] = _mm512_fmadd_ps(wv[r], xv, acc[m][r]);
    }
  }
  for (int m = 0; m < MM; m++) {
    float* y = j.y + (m0 + m) * j.ldy + n;
    for (int r = 0; r < R; r++) {
      float s = _mm512_reduce_add_ps(acc[m][r]);
      y[r] = j.accumulate ? y[r] + s : s;
    }
  }
}

template <class W, int MM>
void rows_m(const GemvJob& j, int64_t n0, int64_t n1, int64_t m0) {
  int64_t n = n0;
  for (; n + 4 <= n1; n += 4) block<W, 4, MM>(j, n, m0);
  for (; n < n1; n++) block<W, 1, MM>(j, n, m0);
}

template <class W>
void rows(const GemvJob& j, int64_t n0, int64_t n1) {
  // Tile the rows so the weight tile stays in L1/L2 while the activation chunks reuse it.
  constexpr int64_t kTile = 64;
  for (int64_t t = n0; t < n1; t += kTile) {
    const int64_t t1 = std::min(n1, t + kTile);
    int64_t m = 0;
    for (; m + 4 <= j.M; m += 4) rows_m<W, 4>(j, t, t1, m);
    switch (j.M - m) {
      case 3: rows_m<W, 3>(j, t, t1, m); break;
      case 2: rows_m<W, 2>(j, t, t1, m); break;
      case 1: rows_m<W, 1>(j, t, t1, m); break;
      default: break;
    }
  }
}

}  // namespace

bool gemv_avx512_supports(const MatRef& w) {
  if (w.dtype != DType::F8_E4M3) return true;
  return w.block_cols % 16 == 0 && w.col0 % 16 == 0;
}

void gemv_rows_avx512(const GemvJob& j, int64_t n0, int64_t n1) {
  switch (j.w.dtype) {
    case DType::F32: rows<F32W>(j, n0, n1); break;
    case DType::BF16: rows<BF16W>(j, n0, n1); break;
    case DType::F16: rows<F16W>(j, n0, n1); break;
    case DType::F8_E4M3: rows<FP8W>(j, n0, n1); break;
    default: break;
  }
}

}  // namespace dseek
