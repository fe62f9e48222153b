// AVX-512 GEMV: four weight rows at a time against up to four activation rows, weights widened to F32 in
// registers (BF16: shift; F16: vcvtph2ps; FP8 E4M3: exponent rebias by 2^120, then the block scale); BF16 weights
// and, at batch 1, FP8 weights (widened exactly to BF16) multiply BF16 hi + lo parts of x with vdpbf16ps.
#include <immintrin.h>

#include <algorithm>
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

// x split into BF16 hi + lo (x to ~2^-16 relative) for the vdpbf16ps paths, per thread: K is small next to the weights.
void split_bf16(const GemvJob& j, std::vector<uint16_t>& split, int64_t& ldxb) {
  const int64_t K = j.w.cols;
  ldxb = (K + 31) / 32 * 32;
  split.resize(size_t(2 * j.M * ldxb));
  uint16_t* xhi = split.data();
  uint16_t* xlo = split.data() + j.M * ldxb;
  for (int64_t m = 0; m < j.M; m++) {
    const float* x = j.x + m * j.ldx;
    for (int64_t k = 0; k < K; k += 16) {
      const __mmask16 mask = tail_mask(K - k);
      const __m512 v = _mm512_maskz_loadu_ps(mask, x + k);
      const __m256bh hi = _mm512_cvtneps_pbh(v);
      const __m512 hf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32((__m256i)hi), 16));
      const __m256bh lo = _mm512_cvtneps_pbh(_mm512_sub_ps(v, hf));
      _mm256_mask_storeu_epi16(xhi + m * ldxb + k, mask, (__m256i)hi);
      _mm256_mask_storeu_epi16(xlo + m * ldxb + k, mask, (__m256i)lo);
    }
  }
}

void rows_bf16(const GemvJob& j, int64_t n0, int64_t n1) {
  thread_local std::vector<uint16_t> split;
  int64_t ldxb = 0;
  split_bf16(j, split, ldxb);
  const uint16_t* xhi = split.data();
  const uint16_t* xlo = split.data() + j.M * ldxb;
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

// FP8 E4M3 -> BF16, exactly (E4M3 has 3 mantissa bits and exponents 2^-9..2^8). Each byte sign-extended to 16
// bits and shifted left by 4 puts the sign at bit 15 and the exponent and mantissa at BF16's bits 10..4; adding
// 0x3C00 rebiases the exponent by 120. Codes with exponent field 0 (zero and subnormals, m * 2^-9; rare in a
// block-scaled weight, but also the masked tail) come from a table.
inline __m512bh fp8_to_bf16(__m256i bytes) {
  const __m512i t = _mm512_slli_epi16(_mm512_cvtepi8_epi16(bytes), 4);
  __m512i r = _mm512_add_epi16(_mm512_and_si512(t, _mm512_set1_epi16(int16_t(0x87F0))), _mm512_set1_epi16(0x3C00));
  const __mmask32 sub = _mm512_testn_epi16_mask(t, _mm512_set1_epi16(0x0780));
  if (__builtin_expect(sub != 0, 0)) {
    // BF16 of m * 2^-9 for m = 0..7 (the rest of the 32 entries unused)
    const __m512i table = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                           0x3C60, 0x3C40, 0x3C20, 0x3C00, 0x3BC0, 0x3B80, 0x3B00, 0);
    const __m512i m = _mm512_and_si512(_mm512_srli_epi16(t, 4), _mm512_set1_epi16(7));
    const __m512i sign = _mm512_and_si512(t, _mm512_set1_epi16(int16_t(0x8000)));
    r = _mm512_mask_mov_epi16(r, sub, _mm512_or_si512(_mm512_permutexvar_epi16(m, table), sign));
  }
  return (__m512bh)r;
}

// Batch-1 decode with FP8 weights: four rows at a time, each 32 weights widened to BF16 in registers (exact) and
// multiplied with x's BF16 hi and lo parts by vdpbf16ps (products as exact as F32's), one scale block of columns
// at a time; each block's sum is multiplied by its scale (w = q * s) into the row's total. One byte per weight is
// read, half of BF16's. Needs block_cols a multiple of 32 and the slice starting on a block (checked by the caller).
inline void rows4_dot_fp8_m1(const GemvJob& j, int64_t n, const uint16_t* xhi, const uint16_t* xlo) {
  const int64_t K = j.w.cols, ld = j.w.ld, bc = j.w.block_cols;
  const uint8_t* row = static_cast<const uint8_t*>(j.w.data) + size_t(n) * size_t(ld);
  const float* srow[4];
  #pragma GCC unroll 4
  for (int r = 0; r < 4; r++) srow[r] = j.w.scale_inv + ((j.w.row0 + n + r) / j.w.block_rows) * j.w.scale_ld + j.w.col0 / bc;
  __m512 total[4];
  #pragma GCC unroll 4
  for (int r = 0; r < 4; r++) total[r] = _mm512_setzero_ps();
  for (int64_t kb = 0; kb < K; kb += bc) {
    const int64_t kend = std::min(K, kb + bc);
    __m512 ah[4], al[4];
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) ah[r] = al[r] = _mm512_setzero_ps();
    for (int64_t k = kb; k < kend; k += 32) {
      const __mmask32 mask = kend - k >= 32 ? __mmask32(0xffffffffu) : __mmask32((1u << (kend - k)) - 1);
      const __m512bh xh = (__m512bh)_mm512_maskz_loadu_epi16(mask, xhi + k);
      const __m512bh xl = (__m512bh)_mm512_maskz_loadu_epi16(mask, xlo + k);
      #pragma GCC unroll 4
      for (int r = 0; r < 4; r++) {
        const uint8_t* p = row + r * ld + k;
        if ((k & 63) == 0) _mm_prefetch(reinterpret_cast<const char*>(p + 4 * ld), _MM_HINT_T0);
        const __m512bh w = fp8_to_bf16(_mm256_maskz_loadu_epi8(mask, p));
        ah[r] = _mm512_dpbf16_ps(ah[r], w, xh);
        al[r] = _mm512_dpbf16_ps(al[r], w, xl);
      }
    }
    #pragma GCC unroll 4
    for (int r = 0; r < 4; r++) total[r] = _mm512_fmadd_ps(_mm512_add_ps(ah[r], al[r]), _mm512_set1_ps(srow[r][kb / bc]), total[r]);
  }
  float* y = j.y + n;
  #pragma GCC unroll 4
  for (int r = 0; r < 4; r++) {
    const float s = _mm512_reduce_add_ps(total[r]);
    y[r] = j.accumulate ? y[r] + s : s;
  }
}

template <class W>
void rows(const GemvJob& j, int64_t n0, int64_t n1);

void rows_fp8(const GemvJob& j, int64_t n0, int64_t n1) {
  int64_t n = n0;
  const bool bf16_products = j.M == 1 && j.w.block_cols % 32 == 0 && j.w.col0 % j.w.block_cols == 0;
  if (bf16_products) {
    thread_local std::vector<uint16_t> split;
    int64_t ldxb = 0;
    split_bf16(j, split, ldxb);
    for (; n + 4 <= n1; n += 4) rows4_dot_fp8_m1(j, n, split.data(), split.data() + ldxb);
  }
  rows<FP8W>(j, n, n1);  // the rest: widened to F32, the block scale per 16 weights
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
    case DType::F8_E4M3: rows_fp8(j, n0, n1); break;
    default: break;
  }
}

}  // namespace dseek
