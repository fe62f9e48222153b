// SwiGLU gate: h = silu(g) * u, silu(g) = g sigmoid(g).
#pragma once
#include <cstdint>

namespace dseek {

void swiglu_forward(const float* g, const float* u, float* h, int64_t n);
// dg = dh u silu'(g), du = dh silu(g), with silu'(g) = s (1 + g (1 - s)), s = sigmoid(g).
void swiglu_backward(const float* g, const float* u, const float* dh, float* dg, float* du, int64_t n);

}  // namespace dseek
