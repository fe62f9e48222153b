// FP8 GEMM with fine-grained scales and FP32 promotion every 128 products (DeepSeek-V3 report, section 3.3.2;
// DeepGEMM's algorithm):
//
//   C[m, n] (+)= sum over K-blocks kb of  sa(m, kb) sb(n, kb) sum_{k in kb} qa[m, k] qb[n, k]
//
// qa, qb are E4M3 values held as BF16 bits (every E4M3 value is exact in BF16, so each inner block is a BF16
// GEMM with F32 accumulation: products of two E4M3 values are exact and the 128-element partial sum is F32);
// each block's partial sum is scaled and added to the F32 result, which is the promotion of the report.
#pragma once
#include <cstdint>

namespace dseek {

// One operand: values v (BF16 bits of E4M3 values) of op(X) [rows, K], stored [rows, K] (ld) or, with
// `trans`, as [K, rows]; its scale for (row i, K-block kb) is s[(i / group) * s_row + kb * s_kb].
struct Fp8Operand {
  const uint16_t* v = nullptr;
  int64_t ld = 0;
  bool trans = false;
  const float* s = nullptr;
  int64_t group = 1, s_row = 0, s_kb = 0;
  float scale(int64_t i, int64_t kb) const { return s[(i / group) * s_row + kb * s_kb]; }
};

// C[M, N] (+)= sum_kb sa(m, kb) sb(n, kb) (A_kb B_kb^T), K-blocks of `block` (128).
void fp8_gemm(int64_t M, int64_t N, int64_t K, int64_t block, const Fp8Operand& a, const Fp8Operand& b, float* C,
              int64_t ldc, bool accumulate);

}  // namespace dseek
