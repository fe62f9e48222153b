// Dense SwiGLU feed-forward y = down(silu(gate x) * up x) (+ biases where the config has them), forward beside
// backward. Also the shared experts and each routed expert of DeepSeekMoE.
#pragma once
#include <cstdint>
#include <vector>

#include "core/precision.h"
#include "kernels/lowp.h"
#include "model/weights.h"

namespace dseek {

struct FFNCache {
  std::vector<float> g, u, h;  // gate and up pre-activations [R, I], h = silu(g) u
  Fp8Matrix gq, uq;            // with fp8_cache: g and u in FP8 instead (g, u, h empty; h recomputed)
};

// y[R, D] (+)= FFN(x[R, D]); c keeps g, u, h for the backward pass, or with fp8_cache only g and u in FP8
// (1 x 128 tiles), the SwiGLU output recomputed in the backward (DeepSeek-V3 report, section 3.3.4).
void ffn_forward(int64_t R, const float* x, const FFNWeights& w, FFNCache& c, float* y, bool accumulate,
                 bool fp8_cache = false);
// dy -> dx (+=), weight gradients into gw.
void ffn_backward(int64_t R, const float* x, const FFNWeights& w, FFNWeights& gw, const FFNCache& c, const float* dy,
                  int64_t lddy, float* dx, Precision p);

}  // namespace dseek
