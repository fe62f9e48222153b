// Linear layer y = x W^T + b, forward beside backward. Weights in any storage dtype (matmul widens them);
// activations and gradients F32.
#pragma once
#include <cstdint>

#include "kernels/matmul.h"

namespace dseek {

// y[R, out] (+)= x[R, in] W^T + b
void linear_forward(int64_t R, const float* x, int64_t ldx, const Linear& w, float* y, int64_t ldy,
                    bool accumulate = false);
// Several linears of the same input (or of small inputs) run together: q/k/v, gate/up, the experts of a decode step.
struct LinearJob {
  int64_t R;
  const float* x;
  int64_t ldx;
  const Linear* w;
  float* y;
  int64_t ldy;
  bool accumulate = false;
};
void linear_forward(const std::vector<LinearJob>& jobs);

// dx[R, in] (+)= dy W ;  dW[out, in] += dy^T x ;  db[out] += sum_r dy  (dW, db F32; db only with a bias)
void linear_backward(int64_t R, const float* dy, int64_t lddy, const float* x, int64_t ldx, const Linear& w,
                     float* dx, int64_t lddx, bool accumulate_dx, Linear& grad, Precision p);

}  // namespace dseek
