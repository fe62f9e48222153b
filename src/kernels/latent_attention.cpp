#include <algorithm>
#include <cstdint>

#include "kernels/latent_attention.h"

#include "core/cpu.h"

namespace dseek {

namespace generic {
#include "kernels/latent_attention_impl.h"
}  // namespace generic

void latent_scores(int64_t M, const float* q, int64_t ldq, const float* kT, int64_t ldk, int64_t dim, int64_t j0,
                   int64_t j1, float* s, int64_t lds) {
  if (use_avx512()) return avx512::latent_scores(M, q, ldq, kT, ldk, dim, j0, j1, s, lds);
  generic::latent_scores(M, q, ldq, kT, ldk, dim, j0, j1, s, lds);
}

}  // namespace dseek
