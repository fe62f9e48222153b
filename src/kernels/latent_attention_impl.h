// Kernels of latent_attention.h, written once as portable loops that the compiler vectorises; included by
// latent_attention.cpp (baseline ISA) and latent_attention_avx512.cpp (AVX-512) inside their own namespace,
// after <algorithm> and <cstdint>. (No include guard: it is meant to be included once per namespace.)

// Keys in blocks of W: for each cache dimension d, one load of W keys and M multiply-adds.
template <int M, int W>
static void scores_block(const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j, float* s,
                         int64_t lds) {
  float acc[M][W] = {};
  for (int64_t d = 0; d < dim; d++) {
    const float* k = kT + d * ldk + j;
    for (int m = 0; m < M; m++) {
      const float qm = q[m * ldq + d];
#pragma omp simd
      for (int i = 0; i < W; i++) acc[m][i] += qm * k[i];
    }
  }
  for (int m = 0; m < M; m++)
#pragma omp simd
    for (int i = 0; i < W; i++) s[m * lds + j + i] = acc[m][i];
}

template <int M>
static void scores_rows(const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j0,
                        int64_t j1, float* s, int64_t lds) {
  constexpr int W = 16;
  int64_t j = j0;
  for (; j + W <= j1; j += W) scores_block<M, W>(q, ldq, kT, ldk, dim, j, s, lds);
  for (; j < j1; j++)  // key tail
    for (int m = 0; m < M; m++) {
      float a = 0;
      for (int64_t d = 0; d < dim; d++) a += q[m * ldq + d] * kT[d * ldk + j];
      s[m * lds + j] = a;
    }
}

void latent_scores(int64_t M, const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j0,
                   int64_t j1, float* s, int64_t lds) {
  for (int64_t m = 0; m < M; m += 4) {
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

