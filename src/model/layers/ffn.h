// Dense SwiGLU feed-forward y = down(silu(gate x) * up x) (+ biases where the config has them), forward beside
// backward. Also the shared experts and each routed expert of DeepSeekMoE.
#pragma once
#include <cstdint>
#include <vector>

#include "core/precision.h"
#include "model/weights.h"

namespace dseek {

struct FFNCache {
  std::vector<float> g, u, h;  // gate and up pre-activations [R, I], h = silu(g) u
};

// y[R, D] (+)= FFN(x[R, D]); c keeps g, u, h for the backward pass.
void ffn_forward(int64_t R, const float* x, const FFNWeights& w, FFNCache& c, float* y, bool accumulate);
// dy -> dx (+=), weight gradients into gw.
void ffn_backward(int64_t R, const float* x, const FFNWeights& w, FFNWeights& gw, const FFNCache& c, const float* dy,
                  int64_t lddy, float* dx, Precision p);

}  // namespace dseek
