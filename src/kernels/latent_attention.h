// Decode-time attention over the MLA latent cache, for up to kMaxHeads query rows at once.
//   scores:        s[m][j] = q[m] . k_j for keys j in [j0, j1), read from the transposed cache kT [dim][ld]
//                  (16 keys per vector: vertical FMAs, no horizontal reductions)
//   weighted sum:  o[m][c] = sum_j p[m][j] v_j[c] for c in [c0, c1), from the row-major cache [keys][ldv]
#pragma once
#include <cstdint>

namespace dseek {

constexpr int64_t kLatentMaxRows = 8;

void latent_scores(int64_t M, const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j0,
                   int64_t j1, float* s, int64_t lds);
void latent_weighted_sum(int64_t M, const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t keys,
                         int64_t c0, int64_t c1, float* o, int64_t ldo);

namespace generic {
void latent_scores(int64_t M, const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j0,
                   int64_t j1, float* s, int64_t lds);
void latent_weighted_sum(int64_t M, const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t keys,
                         int64_t c0, int64_t c1, float* o, int64_t ldo);
}  // namespace generic
namespace avx512 {
void latent_scores(int64_t M, const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j0,
                   int64_t j1, float* s, int64_t lds);
void latent_weighted_sum(int64_t M, const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t keys,
                         int64_t c0, int64_t c1, float* o, int64_t ldo);
}  // namespace avx512

}  // namespace dseek
