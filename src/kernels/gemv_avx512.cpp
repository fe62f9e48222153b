// AVX-512 GEMV: four weight rows at a time against up to four activation rows, weights widened to F32 in
// registers (BF16: shift; F16: vcvtph2ps; FP8 E4M3: exponent rebias by 2^120, then the block scale).
#include <immintrin.h>

#include <vector>

#include "kernels/gemv.h"

namespace dseek {

namespace {

struct F32W {
  static __m512 load(const void* p, int64_t k, __mmask16 m) {
    return _mm512_maskz_loadu_ps(m, static_cast<const float*>(p) + k);
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

// Software prefetch this many bytes ahead in the weight stream: an expert's matrices are a few hundred KB,
// too short for the hardware prefetcher to reach full DRAM bandwidth (measured on Zen 5: MoE decode layer
// 107 -> 85 us; 2,048 B was best for BF16 rows, 8,192 B for F32; reading random 256 KB chunks with nothing
// else to do reaches 57 GB/s of the 70 GB/s sequential).
constexpr int64_t kPrefetchAhead = 8192, kPrefetchAheadBf16 = 2048;

inline __mmask16 tail_mask(int64_t rem) { return rem >= 16 ? __mmask16(0xffff) : __mmask16((1u << rem) - 1); }

// One weight row against activation rows [m0, m0+MM): the row is read front to back (sequential memory, which
// the hardware prefetcher follows; interleaving several short rows defeats it), with U independent
// accumulators per activation row to cover the FMA latency.
template <class W, int MM>
inline void row_dot(const GemvJob& j, int64_t n, int64_t m0) {
  constexpr int U = MM >= 8 ? 1 : 4;
  const int64_t K = j.w.cols;
  const size_t esz = dtype_size(j.w.dtype);
  const void* row = static_cast<const uint8_t*>(j.w.data) + size_t(n) * size_t(j.w.ld) * esz;
  const bool fp8 = j.w.dtype == DType::F8_E4M3;
  const float* srow = fp8 ? j.w.scale_inv + ((j.w.row0 + n) / j.w.block_rows) * j.w.scale_ld : nullptr;
  const float* x = j.x + m0 * j.ldx;
  const int64_t ldx = j.ldx;
  __m512 acc[MM][U];
  #pragma GCC unroll 16
  for (int m = 0; m < MM; m++)
    #pragma GCC unroll 16
    for (int u = 0; u < U; u++) acc[m][u] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 16 * U <= K; k += 16 * U) {
    #pragma GCC unroll 16
    for (int u = 0; u < U; u++) {
      if (size_t(k + 16 * u) * esz % 64 == 0)  // one prefetch per cache line of weights
        _mm_prefetch(static_cast<const char*>(row) + size_t(k + 16 * u) * esz + kPrefetchAhead, _MM_HINT_T0);
      __m512 w = W::load(row, k + 16 * u, 0xffff);
      if (fp8) w = _mm512_mul_ps(w, _mm512_set1_ps(srow[(j.w.col0 + k + 16 * u) / j.w.block_cols]));
      #pragma GCC unroll 16
      for (int m = 0; m < MM; m++) acc[m][u] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x + m * ldx + k + 16 * u), acc[m][u]);
    }
  }
  for (; k < K; k += 16) {
    const __mmask16 mask = tail_mask(K - k);
    __m512 w = W::load(row, k, mask);
    if (fp8) w = _mm512_mul_ps(w, _mm512_set1_ps(srow[(j.w.col0 + k) / j.w.block_cols]));
    #pragma GCC unroll 16
    for (int m = 0; m < MM; m++) acc[m][0] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(mask, x + m * ldx + k), acc[m][0]);
  }
  #pragma GCC unroll 16
  for (int m = 0; m < MM; m++) {
    __m512 sum = acc[m][0];
    #pragma GCC unroll 16
    for (int u = 1; u < U; u++) sum = _mm512_add_ps(sum, acc[m][u]);
    const float s = _mm512_reduce_add_ps(sum);
    float* y = j.y + (m0 + m) * j.ldy + n;
    *y = j.accumulate ? *y + s : s;
  }
}

// BF16 weights: x = hi + lo with hi, lo in BF16 (x to ~2^-16 relative), then vdpbf16ps on pairs of
// weights without widening them: 32 weights per instruction and activation part. hi and lo products go to
// separate accumulators and U blocks of 32 are in flight, so MM * U * 2 independent chains hide the latency
// (with few activation rows a single chain would bound the row at one block per latency).
template <int MM>
inline void row_dot_bf16(const GemvJob& j, int64_t n, int64_t m0, const uint16_t* xhi, const uint16_t* xlo,
                         int64_t ldxb) {
  constexpr int U = MM >= 3 ? 1 : (MM == 2 ? 2 : 4);
  const int64_t K = j.w.cols;
  const uint16_t* row = static_cast<const uint16_t*>(j.w.data) + size_t(n) * size_t(j.w.ld);
  __m512 ah[MM][U], al[MM][U];
  #pragma GCC unroll 16
  for (int m = 0; m < MM; m++)
    #pragma GCC unroll 16
    for (int u = 0; u < U; u++) ah[m][u] = al[m][u] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 32 * U <= K; k += 32 * U) {
    #pragma GCC unroll 16
    for (int u = 0; u < U; u++) {
      _mm_prefetch(reinterpret_cast<const char*>(row + k + 32 * u) + kPrefetchAheadBf16, _MM_HINT_T0);
      const __m512bh w = (__m512bh)_mm512_loadu_si512(row + k + 32 * u);
      #pragma GCC unroll 16
      for (int m = 0; m < MM; m++) {
        ah[m][u] = _mm512_dpbf16_ps(ah[m][u], w, (__m512bh)_mm512_loadu_si512(xhi + (m0 + m) * ldxb + k + 32 * u));
        al[m][u] = _mm512_dpbf16_ps(al[m][u], w, (__m512bh)_mm512_loadu_si512(xlo + (m0 + m) * ldxb + k + 32 * u));
      }
    }
  }
  for (; k < K; k += 32) {
    const __mmask32 mask = K - k >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << (K - k)) - 1);
    const __m512bh w = (__m512bh)_mm512_maskz_loadu_epi16(mask, row + k);
    #pragma GCC unroll 16
    for (int m = 0; m < MM; m++) {
      ah[m][0] = _mm512_dpbf16_ps(ah[m][0], w, (__m512bh)_mm512_maskz_loadu_epi16(mask, xhi + (m0 + m) * ldxb + k));
      al[m][0] = _mm512_dpbf16_ps(al[m][0], w, (__m512bh)_mm512_maskz_loadu_epi16(mask, xlo + (m0 + m) * ldxb + k));
    }
  }
  #pragma GCC unroll 16
  for (int m = 0; m < MM; m++) {
    __m512 sum = _mm512_add_ps(ah[m][0], al[m][0]);
    #pragma GCC unroll 16
    for (int u = 1; u < U; u++) sum = _mm512_add_ps(sum, _mm512_add_ps(ah[m][u], al[m][u]));
    const float s = _mm512_reduce_add_ps(sum);
    float* y = j.y + (m0 + m) * j.ldy + n;
    *y = j.accumulate ? *y + s : s;
  }
}

// One activation row (batch-1 decode) against four BF16 weight rows: the hi/lo activation blocks are loaded
// once per four rows and 16 independent chains (4 rows x hi/lo x 2 blocks) keep vdpbf16ps busy. Prefetch reads
// the next four rows' lines at the same column.
inline void rows4_dot_bf16_m1(const GemvJob& j, int64_t n, const uint16_t* xhi, const uint16_t* xlo) {
  const int64_t K = j.w.cols, ld = j.w.ld;
  const uint16_t* row = static_cast<const uint16_t*>(j.w.data) + size_t(n) * size_t(ld);
  __m512 ah[4][2], al[4][2];
  #pragma GCC unroll 8
  for (int r = 0; r < 4; r++) ah[r][0] = ah[r][1] = al[r][0] = al[r][1] = _mm512_setzero_ps();
  int64_t k = 0;
  for (; k + 64 <= K; k += 64) {
    #pragma GCC unroll 2
    for (int u = 0; u < 2; u++) {
      const __m512bh xh = (__m512bh)_mm512_loadu_si512(xhi + k + 32 * u);
      const __m512bh xl = (__m512bh)_mm512_loadu_si512(xlo + k + 32 * u);
      #pragma GCC unroll 4
      for (int r = 0; r < 4; r++) {
        const uint16_t* p = row + r * ld + k + 32 * u;
        _mm_prefetch(reinterpret_cast<const char*>(p + 4 * ld), _MM_HINT_T0);
        const __m512bh w = (__m512bh)_mm512_loadu_si512(p);
        ah[r][u] = _mm512_dpbf16_ps(ah[r][u], w, xh);
        al[r][u] = _mm512_dpbf16_ps(al[r][u], w, xl);
      }
    }
  }
  for (; k < K; k += 32) {
    const __mmask32 mask = K - k >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << (K - k)) - 1);
    const __m512bh xh = (__m512bh)_mm512_maskz_loadu_epi16(mask, xhi + k);
    const __m512bh xl = (__m512bh)_mm512_maskz_loadu_epi16(mask, xlo + k);
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) {
      const __m512bh w = (__m512bh)_mm512_maskz_loadu_epi16(mask, row + r * ld + k);
      ah[r][0] = _mm512_dpbf16_ps(ah[r][0], w, xh);
      al[r][0] = _mm512_dpbf16_ps(al[r][0], w, xl);
    }
  }
  float* y = j.y + n;
  #pragma GCC unroll 4
  for (int r = 0; r < 4; r++) {
    const float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(ah[r][0], al[r][0]), _mm512_add_ps(ah[r][1], al[r][1])));
    y[r] = j.accumulate ? y[r] + s : s;
  }
}

void rows_bf16(const GemvJob& j, int64_t n0, int64_t n1) {
  // split x into bf16 hi + lo (per thread; K is small next to the weights)
  thread_local std::vector<uint16_t> split;
  const int64_t K = j.w.cols, ldxb = (K + 31) / 32 * 32;
  split.resize(size_t(2 * j.M * ldxb));
  uint16_t* xhi = split.data();
  uint16_t* xlo = split.data() + j.M * ldxb;
  for (int64_t m = 0; m < j.M; m++) {
    const float* x = j.x + m * j.ldx;
    int64_t k = 0;
    for (; k < K; k += 16) {
      const __mmask16 mask = tail_mask(K - k);
      const __m512 v = _mm512_maskz_loadu_ps(mask, x + k);
      const __m256bh hi = _mm512_cvtneps_pbh(v);
      const __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)hi), 16));
      const __m256bh lo = _mm512_cvtneps_pbh(_mm512_sub_ps(v, hf));
      _mm256_mask_storeu_epi16(xhi + m * ldxb + k, mask, (__m256i)hi);
      _mm256_mask_storeu_epi16(xlo + m * ldxb + k, mask, (__m256i)lo);
    }
  }
  int64_t n = n0;
  if (j.M == 1)
    for (; n + 4 <= n1; n += 4) rows4_dot_bf16_m1(j, n, xhi, xlo);
  for (; n < n1; n++) {
    int64_t m = 0;
    for (; m + 8 <= j.M; m += 8) row_dot_bf16<8>(j, n, m, xhi, xlo, ldxb);
    for (; m + 4 <= j.M; m += 4) row_dot_bf16<4>(j, n, m, xhi, xlo, ldxb);
    switch (j.M - m) {
      case 3: row_dot_bf16<3>(j, n, m, xhi, xlo, ldxb); break;
      case 2: row_dot_bf16<2>(j, n, m, xhi, xlo, ldxb); break;
      case 1: row_dot_bf16<1>(j, n, m, xhi, xlo, ldxb); break;
      default: break;
    }
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

}  // namespace

bool gemv_avx512_supports(const MatRef& w) {
  if (w.dtype != DType::F8_E4M3) return true;
  return w.block_cols % 16 == 0 && w.col0 % 16 == 0;
}

void gemv_rows_avx512(const GemvJob& j, int64_t n0, int64_t n1) {
  switch (j.w.dtype) {
    case DType::F32: rows<F32W>(j, n0, n1); break;
    case DType::BF16: rows_bf16(j, n0, n1); break;
    case DType::F16: rows<F16W>(j, n0, n1); break;
    case DType::F8_E4M3: rows<FP8W>(j, n0, n1); break;
    default: break;
  }
}

}  // namespace dseek
