// Matrix products. Weights stay in their storage dtype (F32, BF16, F16, F8_E4M3 with block scales) and are
// converted tile by tile inside the product; activations are F32.
//
//   matmul_wT:  Y[M,N] (+)= X[M,K] . W^T   with W [N,K]  (a Linear's forward)
//   matmul_w:   Y[M,N] (+)= X[M,K] . W     with W [K,N]  (input gradient, absorbed attention)
//   gemm:       C = alpha op(A) op(B) + beta C for F32 activations, computed in F32 or BF16.
//
// Small M (decode) runs hand-written GEMV kernels (memory bound); larger M runs oneDNN with cached primitives.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace dseek {

struct Linear;

// A row-major matrix [rows, cols] with leading dimension ld, in any float dtype.
struct MatRef {
  DType dtype = DType::F32;
  const void* data = nullptr;
  int64_t rows = 0, cols = 0, ld = 0;
  // F8_E4M3 only: F32 scales [ceil(rows/br), ceil(cols/bc)] with leading dimension scale_ld,
  // for the block grid anchored at (row0, col0) of the full matrix.
  const float* scale_inv = nullptr;
  int64_t scale_ld = 0, block_rows = 128, block_cols = 128, row0 = 0, col0 = 0;

  static MatRef of(const Linear& l);
  static MatRef of(const Tensor& t);  // 2-D float tensor
  // Rows [r, r + n) of this matrix.
  MatRef row_slice(int64_t r, int64_t n) const;
  MatRef col_slice(int64_t c, int64_t n) const;
  // Element (i, j) as f32 (scaled for FP8); slow, for tests and tiny ops.
  float at(int64_t i, int64_t j) const;
  // Dequantise rows [r, r+n) into dst [n, cols] f32.
  void rows_to_f32(int64_t r, int64_t n, float* dst) const;
};

enum class Precision { F32, BF16 };

// Whether BF16 products run natively here (oneDNN BF16 matmul: AVX512-BF16 or AMX). Without, BF16 products are
// emulated by widening the operands to F32: same results, slower than F32.
bool native_bf16_products();
// A precision setting: "f32", "bf16", or "auto" (bf16 where native_bf16_products(), else f32) resolved; other
// values fail naming `what`.
std::string resolve_precision(const std::string& setting, const std::string& what);

void matmul_wT(int64_t M, const float* x, int64_t ldx, const MatRef& w, float* y, int64_t ldy,
               bool accumulate = false);
void matmul_w(int64_t M, const float* x, int64_t ldx, const MatRef& w, float* y, int64_t ldy,
              bool accumulate = false);
// Y[M,N] = X . W^T with X given transposed: xT [K, M] with leading dimension ldxT.
void matmul_xT_wT(int64_t M, const float* xT, int64_t ldxT, const MatRef& w, float* y, int64_t ldy);

// One small product of a batch run together in a single parallel region (decode: q_a and kv_a,
// gate and up of several experts, ...). Requires M <= kGemvMaxRows.
struct GemvJob {
  int64_t M;
  const float* x;
  int64_t ldx;
  MatRef w;  // [N, K], y = x w^T
  float* y;
  int64_t ldy;
  bool accumulate = false;
};
constexpr int64_t kGemvMaxRows = 8;
void gemv_batch(const std::vector<GemvJob>& jobs);
// One small product on the calling thread (for use inside parallel regions). M may exceed kGemvMaxRows.
void gemv_serial(const GemvJob& job);

// C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C. op(A) = A^T when ta (A stored [K,M]); op(B) = B^T when tb.
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, Precision p = Precision::F32);
// Same with BF16 operands (already converted), F32 output.
void gemm_bf16(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A, int64_t lda,
               const uint16_t* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Round-up of a row count to a bucket so oneDNN JIT-compiles a bounded set of kernels.
int64_t gemm_row_bucket(int64_t M);

// Conversions used around the products (parallel, vectorised).
void f32_to_bf16_rows(const float* src, int64_t rows, int64_t cols, int64_t ld_src, uint16_t* dst, int64_t ld_dst);

}  // namespace dseek
