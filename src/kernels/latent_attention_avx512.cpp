#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/latent_attention.h"

namespace dseek::avx512 {

namespace {

// 32 keys (two vectors) x M <= 4 query rows in named registers (an accumulator array gets spilled by GCC);
// per cache dimension: two loads and 2M broadcast FMAs.
template <int M>
void scores_32(const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j, float* s, int64_t lds,
               __mmask16 m0, __mmask16 m1) {
  __m512 a00 = _mm512_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
  const float* q0 = q;
  const float* q1 = q + ldq;
  const float* q2 = q + 2 * ldq;
  const float* q3 = q + 3 * ldq;
  for (int64_t d = 0; d < dim; d++) {
    const float* k = kT + d * ldk + j;
    // the strip of the next 32 keys in this row, one block (dim iterations) ahead: the hardware prefetcher
    // does not follow a column strip
    _mm_prefetch(reinterpret_cast<const char*>(k + 32), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(k + 48), _MM_HINT_T0);
    const __m512 k0 = _mm512_maskz_loadu_ps(m0, k), k1 = _mm512_maskz_loadu_ps(m1, k + 16);
    __m512 b = _mm512_set1_ps(q0[d]);
    a00 = _mm512_fmadd_ps(b, k0, a00);
    a01 = _mm512_fmadd_ps(b, k1, a01);
    if constexpr (M > 1) {
      b = _mm512_set1_ps(q1[d]);
      a10 = _mm512_fmadd_ps(b, k0, a10);
      a11 = _mm512_fmadd_ps(b, k1, a11);
    }
    if constexpr (M > 2) {
      b = _mm512_set1_ps(q2[d]);
      a20 = _mm512_fmadd_ps(b, k0, a20);
      a21 = _mm512_fmadd_ps(b, k1, a21);
    }
    if constexpr (M > 3) {
      b = _mm512_set1_ps(q3[d]);
      a30 = _mm512_fmadd_ps(b, k0, a30);
      a31 = _mm512_fmadd_ps(b, k1, a31);
    }
  }
  _mm512_mask_storeu_ps(s + j, m0, a00);
  _mm512_mask_storeu_ps(s + j + 16, m1, a01);
  if constexpr (M > 1) {
    _mm512_mask_storeu_ps(s + lds + j, m0, a10);
    _mm512_mask_storeu_ps(s + lds + j + 16, m1, a11);
  }
  if constexpr (M > 2) {
    _mm512_mask_storeu_ps(s + 2 * lds + j, m0, a20);
    _mm512_mask_storeu_ps(s + 2 * lds + j + 16, m1, a21);
  }
  if constexpr (M > 3) {
    _mm512_mask_storeu_ps(s + 3 * lds + j, m0, a30);
    _mm512_mask_storeu_ps(s + 3 * lds + j + 16, m1, a31);
  }
}

// 16 keys x 8 query rows: per cache dimension one load and 8 broadcast FMAs, so a strip of the cache is read
// once for 8 rows (the 4-row kernel would read it twice).
void scores_16x8(const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j, float* s,
                 int64_t lds, __mmask16 mk) {
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (int64_t d = 0; d < dim; d++) {
    const __m512 k = _mm512_maskz_loadu_ps(mk, kT + d * ldk + j);
    a0 = _mm512_fmadd_ps(_mm512_set1_ps(q[d]), k, a0);
    a1 = _mm512_fmadd_ps(_mm512_set1_ps(q[ldq + d]), k, a1);
    a2 = _mm512_fmadd_ps(_mm512_set1_ps(q[2 * ldq + d]), k, a2);
    a3 = _mm512_fmadd_ps(_mm512_set1_ps(q[3 * ldq + d]), k, a3);
    a4 = _mm512_fmadd_ps(_mm512_set1_ps(q[4 * ldq + d]), k, a4);
    a5 = _mm512_fmadd_ps(_mm512_set1_ps(q[5 * ldq + d]), k, a5);
    a6 = _mm512_fmadd_ps(_mm512_set1_ps(q[6 * ldq + d]), k, a6);
    a7 = _mm512_fmadd_ps(_mm512_set1_ps(q[7 * ldq + d]), k, a7);
  }
  _mm512_mask_storeu_ps(s + j, mk, a0);
  _mm512_mask_storeu_ps(s + lds + j, mk, a1);
  _mm512_mask_storeu_ps(s + 2 * lds + j, mk, a2);
  _mm512_mask_storeu_ps(s + 3 * lds + j, mk, a3);
  _mm512_mask_storeu_ps(s + 4 * lds + j, mk, a4);
  _mm512_mask_storeu_ps(s + 5 * lds + j, mk, a5);
  _mm512_mask_storeu_ps(s + 6 * lds + j, mk, a6);
  _mm512_mask_storeu_ps(s + 7 * lds + j, mk, a7);
}

template <int M>
void scores_rows(const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j0, int64_t j1, float* s,
                 int64_t lds) {
  for (int64_t j = j0; j < j1; j += 32) {
    const int64_t w = std::min<int64_t>(32, j1 - j);
    const __mmask16 m0 = w >= 16 ? __mmask16(0xffff) : __mmask16((1u << w) - 1);
    const __mmask16 m1 = w >= 32 ? __mmask16(0xffff) : w > 16 ? __mmask16((1u << (w - 16)) - 1) : __mmask16(0);
    scores_32<M>(q, ldq, kT, ldk, dim, j, s, lds, m0, m1);
  }
}

}  // namespace

void latent_scores(int64_t M, const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j0,
                   int64_t j1, float* s, int64_t lds) {
  int64_t m0 = 0;
  for (; m0 + 8 <= M; m0 += 8)
    for (int64_t j = j0; j < j1; j += 16) {
      const int64_t w = std::min<int64_t>(16, j1 - j);
      scores_16x8(q + m0 * ldq, ldq, kT, ldk, dim, j, s + m0 * lds, lds, w >= 16 ? __mmask16(0xffff) : __mmask16((1u << w) - 1));
    }
  for (int64_t m = m0; m < M; m += 4) {
    const float* qm = q + m * ldq;
    float* sm = s + m * lds;
    switch (std::min<int64_t>(4, M - m)) {
      case 4: scores_rows<4>(qm, ldq, kT, ldk, dim, j0, j1, sm, lds); break;
      case 3: scores_rows<3>(qm, ldq, kT, ldk, dim, j0, j1, sm, lds); break;
      case 2: scores_rows<2>(qm, ldq, kT, ldk, dim, j0, j1, sm, lds); break;
      default: scores_rows<1>(qm, ldq, kT, ldk, dim, j0, j1, sm, lds); break;
    }
  }
}

}  // namespace dseek::avx512
