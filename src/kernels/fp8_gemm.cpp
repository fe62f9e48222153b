#include "kernels/fp8_gemm.h"

#include <omp.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "kernels/matmul.h"

namespace dseek {

void fp8_gemm(int64_t M, int64_t N, int64_t K, int64_t block, const Fp8Operand& a, const Fp8Operand& b, float* C,
              int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (!accumulate)
    for (int64_t m = 0; m < M; m++) std::fill(C + m * ldc, C + m * ldc + N, 0.0f);
  // rows of C per pass, so that the block's partial product stays in cache while it is scaled and added
  const int64_t mt = std::clamp<int64_t>((int64_t(1) << 17) / std::max<int64_t>(N, 1) / 16 * 16, 16, 1024);
  std::unique_ptr<float[]> part(new float[size_t(std::min(mt, M) * N)]);  // written before read
  std::vector<float> sbk(static_cast<size_t>(N));
  const int64_t nkb = (K + block - 1) / block;
  for (int64_t m0 = 0; m0 < M; m0 += mt) {
    const int64_t mc = std::min(mt, M - m0);
    for (int64_t kb = 0; kb < nkb; kb++) {
      const int64_t k0 = kb * block, kc = std::min(block, K - k0);
      // op(A) rows m0.., columns k0..: A stored [M, K] -> (m0, k0); stored [K, M] -> (k0, m0)
      const uint16_t* ap = a.trans ? a.v + k0 * a.ld + m0 : a.v + m0 * a.ld + k0;
      // op(B)^T: B [N, K] -> (0, k0) with tb; B stored [K, N] -> (k0, 0)
      const uint16_t* bp = b.trans ? b.v + k0 * b.ld : b.v + k0;
      gemm_bf16(a.trans, !b.trans, mc, N, kc, 1.0f, ap, a.ld, bp, b.ld, 0.0f, part.get(), N);
      for (int64_t n = 0; n < N; n++) sbk[size_t(n)] = b.scale(n, kb);
#pragma omp parallel for schedule(static) if (mc * N > 16384 && !omp_in_parallel())
      for (int64_t i = 0; i < mc; i++) {
        const float sa = a.scale(m0 + i, kb);
        const float* p = part.get() + i * N;
        float* c = C + (m0 + i) * ldc;
#pragma omp simd
        for (int64_t n = 0; n < N; n++) c[n] += p[n] * (sa * sbk[size_t(n)]);
      }
    }
  }
}

}  // namespace dseek
