// Token embedding: a row gather, and its backward a scatter-add.
#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace dseek {

// y[r] = E[tokens[r]] (E in any float dtype); ids outside the vocabulary fail naming the id.
void embedding_forward(const Tensor& E, const int32_t* tokens, int64_t R, float* y);
// dE[tokens[r]] += dy[r]  (rows sorted by token so the sum is deterministic for any thread count)
void embedding_backward(const int32_t* tokens, int64_t R, const float* dy, Tensor& dE);

}  // namespace dseek
