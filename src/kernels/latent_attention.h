// Decode-time attention scores over the MLA latent cache: s[m][j] = q[m] . k_j for keys j in [j0, j1), read
// from the transposed cache kT [dim][ldk], 16 keys per vector (vertical FMAs, no horizontal reductions).
#pragma once
#include <cstdint>

namespace dseek {

constexpr int64_t kLatentMaxRows = 8;

void latent_scores(int64_t M, const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j0,
                   int64_t j1, float* s, int64_t lds);

namespace generic {
void latent_scores(int64_t M, const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j0,
                   int64_t j1, float* s, int64_t lds);
}  // namespace generic
namespace avx512 {
void latent_scores(int64_t M, const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j0,
                   int64_t j1, float* s, int64_t lds);
}  // namespace avx512

}  // namespace dseek
