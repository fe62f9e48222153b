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

// Columns in chunks of C, rows in groups of M: acc[M][C] stays in registers while the keys stream by.
template <int M, int C>
static void weighted_block(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t keys, int64_t c,
                           float* o, int64_t ldo) {
  float acc[M][C] = {};
  for (int64_t j = 0; j < keys; j++) {
    const float* vj = v + j * ldv + c;
    for (int m = 0; m < M; m++) {
      const float pm = p[m * ldp + j];
#pragma omp simd
      for (int i = 0; i < C; i++) acc[m][i] += pm * vj[i];
    }
  }
  for (int m = 0; m < M; m++)
#pragma omp simd
    for (int i = 0; i < C; i++) o[m * ldo + c + i] = acc[m][i];
}

void latent_weighted_sum(int64_t M, const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t keys,
                         int64_t c0, int64_t c1, float* o, int64_t ldo) {
  constexpr int C = 64;
  for (int64_t m = 0; m < M; m += 4) {
    const int64_t mm = std::min<int64_t>(4, M - m);
    const float* pm = p + m * ldp;
    float* om = o + m * ldo;
    int64_t c = c0;
    for (; c + C <= c1; c += C) {
      switch (mm) {
        case 4: weighted_block<4, C>(pm, ldp, v, ldv, keys, c, om, ldo); break;
        case 3: weighted_block<3, C>(pm, ldp, v, ldv, keys, c, om, ldo); break;
        case 2: weighted_block<2, C>(pm, ldp, v, ldv, keys, c, om, ldo); break;
        default: weighted_block<1, C>(pm, ldp, v, ldv, keys, c, om, ldo); break;
      }
    }
    for (; c < c1; c++)  // column tail
      for (int64_t r = 0; r < mm; r++) {
        float a = 0;
        for (int64_t j = 0; j < keys; j++) a += pm[r * ldp + j] * v[j * ldv + c];
        om[r * ldo + c] = a;
      }
  }
}
