// Matrix products: one interface for every weight product (GEMV or GEMM, dtype and ISA picked inside) and one
// for products of two activations.
//
//   matmul(Matmul{...})        Y[M,N] (+)= X[M,K] W^T   (W [N,K]: a Linear's forward)
//                              Y[M,N] (+)= X[M,K] W     (W [K,N]: input gradients, absorbed attention)
//   matmul({Matmul, ...})      several independent weight products run together (one pass over all weights when
//                              every X is small, as in decode)
//   gemm(...)                  C = alpha op(A) op(B) + beta C on F32 activations, computed in F32 or BF16
//
// Weights stay in their storage dtype (F32, BF16, F16, F8_E4M3 with block scales) and are widened tile by tile;
// activations are F32. Small M runs hand-written GEMV kernels (memory bound, AVX-512 or AVX2 chosen at run time);
// larger M runs oneDNN with cached primitives. Inside a parallel region a product runs on the calling thread.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/precision.h"
#include "core/tensor.h"

namespace dseek {

struct LowPrecisionRecipe;

// A weight matrix y = x W^T + b with W [out, in] in F32, BF16, F16 or F8_E4M3 (then scale_inv holds block
// scales) and an optional F32 bias [out].
struct Linear {
  Tensor weight;
  Tensor scale_inv;  // F32 [ceil(out/br), ceil(in/bc)], only for F8_E4M3
  int64_t block_rows = 128, block_cols = 128;
  Tensor bias;       // F32 [out] or undefined
  const LowPrecisionRecipe* recipe = nullptr;  // training in FP8/F16: how the operands are rounded (kernels/lowp.h)
  int64_t out() const { return weight.dim(0); }
  int64_t in() const { return weight.dim(1); }
  bool has_bias() const { return bias.data != nullptr; }
};

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
  // An F32 matrix in memory that is not a tensor (caches, scratch).
  static MatRef f32(const float* data, int64_t rows, int64_t cols, int64_t ld);
  // Rows [r, r + n) of this matrix.
  MatRef row_slice(int64_t r, int64_t n) const;
  MatRef col_slice(int64_t c, int64_t n) const;
  // Element (i, j) as f32 (scaled for FP8); slow, for tests and tiny ops.
  float at(int64_t i, int64_t j) const;
  // Dequantise rows [r, r+n) into dst [n, cols] f32.
  void rows_to_f32(int64_t r, int64_t n, float* dst) const;
};

// One weight product. X is [M, K] rows with leading dimension ldx, or with x_transposed its transpose [K, M].
struct Matmul {
  int64_t M = 0;
  const float* x = nullptr;
  int64_t ldx = 0;
  MatRef w;
  float* y = nullptr;
  int64_t ldy = 0;
  bool accumulate = false;  // Y += instead of Y =
  bool w_plain = false;     // Y = X W (W [K, N]) instead of X W^T (W [N, K])
  bool x_transposed = false;
};

void matmul(const Matmul& p);
// Independent products (distinct outputs) run together.
void matmul(const std::vector<Matmul>& ps);

// Rows of X at or below which a weight product is a GEMV (memory bound).
constexpr int64_t kGemvMaxRows = 8;

// Whether BF16 products run natively here (oneDNN BF16 matmul: AVX512-BF16 or AMX). Without, BF16 products are
// emulated by widening the operands to F32: same results, slower than F32.
bool native_bf16_products();

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
