// The Linear products of an FP8 or F16 training run (Linear::recipe set; kernels/lowp.h):
//   Fprop  Y  = q(X) q(W)^T          X in 1 x 128 tiles (one token, 128 channels), W in 128 x 128 blocks
//   Dgrad  dX = q(dY) q(W)           dY in 1 x 128 tiles
//   Wgrad  dW += q'(dY)^T q'(X)      both re-tiled 128 x 1 (128 tokens, one channel) from their FP8 values
// With tile scales the products run as fp8_gemm (128-element BF16 blocks promoted to F32); with power-of-two
// scales every dequantised value is exact in BF16 and one BF16 GEMM computes the same sums; with one scale per
// tensor the dequantised values are multiplied in F32. F16: operands and product outputs rounded to F16.
#pragma once
#include <cstdint>

#include "kernels/matmul.h"

namespace dseek {

void lowp_linear_forward(int64_t R, const float* x, int64_t ldx, const Linear& w, float* y, int64_t ldy,
                         bool accumulate);
void lowp_linear_backward(int64_t R, const float* dy, int64_t lddy, const float* x, int64_t ldx, const Linear& w,
                          float* dx, int64_t lddx, bool accumulate_dx, Linear& grad);

}  // namespace dseek
