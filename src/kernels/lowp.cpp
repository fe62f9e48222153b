#include "kernels/lowp.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/dtype.h"

namespace dseek {

namespace {

// Branch-free (vectorisable) E4M3 rounding: normal values keep 3 mantissa bits (round to nearest even on the bit
// pattern); below 2^-6 the grid is 2^-9, where adding and subtracting 2^14 (whose ulp is 2^-9) rounds to it.
inline float round_e4m3(float y) {
  const float a = std::fabs(y);
  uint32_t u = std::bit_cast<uint32_t>(a);
  u = (u + 0x7ffffu + ((u >> 20) & 1u)) & 0xfff00000u;
  const float normal = std::bit_cast<float>(u);
  const float sub = (a + 16384.0f) - 16384.0f;
  float r = a < 0.015625f ? sub : normal;
  r = r > kE4M3Max ? kE4M3Max : r;  // 464 rounds to 480 on the grid; E4M3 stops at 448
  r = a <= FLT_MAX ? r : NAN;       // inf and NaN: NaN (E4M3 has no infinity)
  return std::copysign(r, y);
}

}  // namespace

float e4m3_round(float x) { return round_e4m3(x); }

float fp8_scale_of(float amax, bool pow2) {
  if (!(amax > 0)) return 1.0f;
  float s = std::max(amax / kE4M3Max, FLT_MIN);
  if (pow2) {
    int e;
    const float m = std::frexp(s, &e);  // s = m 2^e, m in [0.5, 1)
    s = std::ldexp(1.0f, m == 0.5f ? e - 1 : e);
  }
  return s;
}

namespace {

// |v| for finite v, else 0 (amax is taken over the finite values)
inline float finite_abs(float v) {
  const float a = std::fabs(v);
  return a <= FLT_MAX ? a : 0.0f;
}

// Per-thread row of quantised values.
float* row_buffer(int64_t n) {
  thread_local std::vector<float> b;
  if (b.size() < size_t(n)) b.resize(size_t(n));
  return b.data();
}

// The E4M3 code of a value on the E4M3 grid (|v| <= 448, or NaN), from its bits.
inline uint8_t e4m3_code(float v) {
  const uint32_t u = std::bit_cast<uint32_t>(v);
  const uint8_t sign = uint8_t((u >> 24) & 0x80u);
  const float a = std::fabs(v);
  if (!(a <= kE4M3Max)) return 0x7f;
  if (a < 0.015625f) return sign | uint8_t(a * 512.0f);      // subnormal: a = m 2^-9
  const uint32_t e = ((u >> 23) & 0xffu) - 127 + 7, m = (u >> 20) & 7u;  // normal: exponent bias 7, 3 mantissa bits
  return sign | uint8_t(e << 3 | m);
}

// Quantises X [R, C] in br x bc groups: writes each group's scale to scale[(r / br) * nbc + c / bc] and calls
// emit(r, c0, n, q, s) with the E4M3 values q[0..n) of row r, columns c0.. (one call per row of a group, or per
// row band of column groups when bc == 1, with s the scales of those columns), and adds what was lost to counts.
template <class Emit>
void quantize_groups(const float* x, int64_t R, int64_t C, int64_t ldx, int64_t br, int64_t bc, bool pow2, float* scale,
                     LowpCounts* counts, Emit emit) {
  const int64_t nbr = (R + br - 1) / br, nbc = (C + bc - 1) / bc;
  int64_t under = 0, sat = 0;
  // q = round(x / s): underflow when a finite non-zero x becomes 0, saturation when x / s lies beyond 464 (it would
  // have rounded past 448)
  auto quantise_row = [&](const float* xr, const float* s, bool per_column, int64_t n, float* q, int64_t& u, int64_t& st) {
    int64_t uu = 0, ss = 0;
    auto one = [&](int64_t i, float y) {
      q[i] = round_e4m3(y);
      const float ay = std::fabs(y);
      uu += (q[i] == 0.0f) & (ay > 0.0f) & (ay <= FLT_MAX);
      ss += (ay > 464.0f) & (ay <= FLT_MAX);
    };
    if (per_column) {
#pragma omp simd reduction(+ : uu, ss)
      for (int64_t i = 0; i < n; i++) one(i, xr[i] / s[i]);
    } else {
      const float s0 = s[0];
#pragma omp simd reduction(+ : uu, ss)
      for (int64_t i = 0; i < n; i++) one(i, xr[i] / s0);
    }
    u += uu;
    st += ss;
  };
  if (bc == 1) {  // column groups: amax per column over each band of br rows (row-major friendly)
#pragma omp parallel for schedule(static) reduction(+ : under, sat) if (R * C > 32768 && !omp_in_parallel())
    for (int64_t bi = 0; bi < nbr; bi++) {
      const int64_t r0 = bi * br, r1 = std::min(R, r0 + br);
      float* s = scale + bi * C;
      std::fill(s, s + C, 0.0f);
      for (int64_t r = r0; r < r1; r++) {
        const float* xr = x + r * ldx;
#pragma omp simd
        for (int64_t c = 0; c < C; c++) s[c] = std::max(s[c], finite_abs(xr[c]));
      }
      for (int64_t c = 0; c < C; c++) s[c] = fp8_scale_of(s[c], pow2);
      float* q = row_buffer(C);
      for (int64_t r = r0; r < r1; r++) {
        quantise_row(x + r * ldx, s, true, C, q, under, sat);
        emit(r, 0, C, q, s, true);
      }
    }
  } else {
#pragma omp parallel for collapse(2) schedule(static) reduction(+ : under, sat) if (R * C > 32768 && !omp_in_parallel())
    for (int64_t bi = 0; bi < nbr; bi++)
      for (int64_t bj = 0; bj < nbc; bj++) {
        const int64_t r0 = bi * br, r1 = std::min(R, r0 + br), c0 = bj * bc, n = std::min(C, c0 + bc) - c0;
        float amax = 0;
        for (int64_t r = r0; r < r1; r++) {
          const float* xr = x + r * ldx + c0;
#pragma omp simd reduction(max : amax)
          for (int64_t c = 0; c < n; c++) amax = std::max(amax, finite_abs(xr[c]));
        }
        float* s = scale + bi * nbc + bj;
        *s = fp8_scale_of(amax, pow2);
        float* q = row_buffer(n);
        for (int64_t r = r0; r < r1; r++) {
          quantise_row(x + r * ldx + c0, s, false, n, q, under, sat);
          emit(r, c0, n, q, s, false);
        }
      }
  }
  if (counts) counts->add(R * C, under, sat);
}

}  // namespace

void fp8_round_blocks(const float* x, int64_t R, int64_t C, int64_t ldx, float* out, int64_t ldo, int64_t br, int64_t bc,
                  bool pow2, LowpCounts* counts) {
  std::vector<float> scale(static_cast<size_t>(((R + br - 1) / br) * ((C + bc - 1) / bc)));
  quantize_groups(x, R, C, ldx, br, bc, pow2, scale.data(), counts,
                  [&](int64_t r, int64_t c0, int64_t n, const float* q, const float* s, bool per_column) {
                    float* o = out + r * ldo + c0;
                    if (per_column) {
#pragma omp simd
                      for (int64_t i = 0; i < n; i++) o[i] = q[i] * s[i];
                    } else {
#pragma omp simd
                      for (int64_t i = 0; i < n; i++) o[i] = q[i] * s[0];
                    }
                  });
}

void fp8_round_rows(const float* x, int64_t R, int64_t C, int64_t ldx, float* out, int64_t ldo, int64_t tile, bool pow2,
                    LowpCounts* counts) {
  fp8_round_blocks(x, R, C, ldx, out, ldo, 1, tile, pow2, counts);
}

void fp8_round_cols(const float* x, int64_t R, int64_t C, int64_t ldx, float* out, int64_t ldo, int64_t tile, bool pow2,
                    LowpCounts* counts) {
  fp8_round_blocks(x, R, C, ldx, out, ldo, tile, 1, pow2, counts);
}

void fp8_round_tensor(const float* x, int64_t R, int64_t C, int64_t ldx, float* out, int64_t ldo, bool pow2,
                      LowpCounts* counts) {
  fp8_round_blocks(x, R, C, ldx, out, ldo, R, C, pow2, counts);
}

void fp8_quantize_blocks(const float* x, int64_t R, int64_t C, int64_t ldx, int64_t br, int64_t bc, bool pow2,
                         uint8_t* q, float* scale_inv, LowpCounts* counts) {
  quantize_groups(x, R, C, ldx, br, bc, pow2, scale_inv, counts,
                  [&](int64_t r, int64_t c0, int64_t n, const float* v, const float*, bool) {
                    for (int64_t i = 0; i < n; i++) q[r * C + c0 + i] = e4m3_code(v[i]);
                  });
}

void fp8_quantize_bf16(const float* x, int64_t R, int64_t C, int64_t ldx, int64_t br, int64_t bc, bool pow2,
                       uint16_t* q, int64_t ldq, float* scale, LowpCounts* counts) {
  quantize_groups(x, R, C, ldx, br, bc, pow2, scale, counts,
                  [&](int64_t r, int64_t c0, int64_t n, const float* v, const float*, bool) {
                    uint16_t* o = q + r * ldq + c0;
                    for (int64_t i = 0; i < n; i++) o[i] = uint16_t(std::bit_cast<uint32_t>(v[i]) >> 16);  // E4M3 values are exact in BF16
                  });
}

void Fp8Matrix::store(const float* x, int64_t R, int64_t C, int64_t ldx, int64_t tile_size) {
  rows = R, cols = C, tile = tile_size;
  q.resize(size_t(R * C));
  s.resize(size_t(R * ((C + tile - 1) / tile)));
  fp8_quantize_blocks(x, R, C, ldx, 1, tile, false, q.data(), s.data());
}

void Fp8Matrix::load(float* out) const {
  const int64_t nt = (cols + tile - 1) / tile;
#pragma omp parallel for schedule(static) if (rows * cols > 65536 && !omp_in_parallel())
  for (int64_t r = 0; r < rows; r++) {
    const uint8_t* qr = q.data() + r * cols;
    float* o = out + r * cols;
    for (int64_t c = 0; c < cols; c++) o[c] = kFp8E4M3ToF32[qr[c]] * s[size_t(r * nt + c / tile)];
  }
}

void fp8_codes_to_bf16(const uint8_t* codes, int64_t n, uint16_t* out) {
#pragma omp parallel for schedule(static) if (n > 65536 && !omp_in_parallel())
  for (int64_t i = 0; i < n; i++) out[i] = f32_to_bf16(kFp8E4M3ToF32[codes[i]]);
}

void f16_round(const float* x, int64_t R, int64_t C, int64_t ldx, float* out, int64_t ldo, LowpCounts* counts) {
  int64_t under = 0, sat = 0;
#pragma omp parallel for schedule(static) reduction(+ : under, sat) if (R * C > 32768 && !omp_in_parallel())
  for (int64_t r = 0; r < R; r++) {
    const float* xr = x + r * ldx;
    float* o = out + r * ldo;
    int64_t c = 0;
    for (; c + 8 <= C; c += 8) {
      const __m256 v = _mm256_loadu_ps(xr + c);
      const __m256 h = _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
      if (counts) {
        const __m256 zero = _mm256_setzero_ps();
        const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
        const __m256 av = _mm256_and_ps(v, absmask), ah = _mm256_and_ps(h, absmask);
        const __m256 inf = _mm256_set1_ps(INFINITY);
        const int u = _mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(ah, zero, _CMP_EQ_OQ),
                                                        _mm256_and_ps(_mm256_cmp_ps(av, zero, _CMP_GT_OQ),
                                                                      _mm256_cmp_ps(av, inf, _CMP_LT_OQ))));
        const int s = _mm256_movemask_ps(_mm256_and_ps(_mm256_cmp_ps(ah, inf, _CMP_EQ_OQ), _mm256_cmp_ps(av, inf, _CMP_LT_OQ)));
        under += __builtin_popcount(unsigned(u));
        sat += __builtin_popcount(unsigned(s));
      }
      _mm256_storeu_ps(o + c, h);
    }
    for (; c < C; c++) {
      const float v = xr[c], h = f16_to_f32(f32_to_f16(v));
      if (h == 0.0f && v != 0.0f && std::isfinite(v)) under++;
      if (std::isinf(h) && std::isfinite(v)) sat++;
      o[c] = h;
    }
  }
  if (counts) counts->add(R * C, under, sat);
}

float fp8_dot_limited(const float* a, const float* b, int64_t K, int mantissa_bits, int64_t interval) {
  auto narrow = [&](float v) {  // keep `mantissa_bits` explicit mantissa bits, round to nearest even
    if (!std::isfinite(v) || v == 0.0f) return v;
    int e;
    std::frexp(v, &e);  // v = m 2^e, |m| in [0.5, 1): the unit of the last kept bit is 2^(e - 1 - bits)
    const float ulp = std::ldexp(1.0f, e - 1 - mantissa_bits);
    return std::nearbyint(v / ulp) * ulp;
  };
  float total = 0, part = 0;
  for (int64_t k = 0; k < K; k++) {
    part = narrow(part + a[k] * b[k]);
    if ((k + 1) % interval == 0 || k + 1 == K) {
      total += part;
      part = 0;
    }
  }
  return total;
}

}  // namespace dseek
