// oneDNN matmul backend of matmul() and gemm() (internal to src/kernels): cached primitives, per-thread
// streams and scratchpads, so products may also run inside parallel regions.
#pragma once
#include <cstddef>
#include <cstdint>

namespace dseek {

enum class GemmType { F32, BF16 };

// C[M,N] = alpha op(A) op(B) + beta C with A, B of type t (F32 or BF16 bits), C F32.
void onednn_gemm(GemmType t, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const void* A,
                 int64_t lda, const void* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Per-thread scratch for operand copies.
uint16_t* bf16_scratch_a(size_t n);
uint16_t* bf16_scratch_b(size_t n);
float* f32_scratch(size_t n);

}  // namespace dseek
