// DeepSeekMoE routing: scores s = sigmoid(z) or softmax(z) of the router logits z = x W_g^T;
// selection on s + b (correction bias, noaux_tc only), limited to the top `topk_group` groups
// (group score: sum of the top-2 biased scores for noaux_tc, max score for group_limited_greedy);
// weights g = s[selected] (unbiased), normalised to sum 1 if norm_topk_prob, times routed_scaling_factor.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"

namespace dseek {

struct Routing {
  int64_t rows = 0, k = 0, experts = 0;
  std::vector<int32_t> idx;    // [rows, k], in ranked order
  std::vector<float> weight;   // [rows, k]
  std::vector<float> scores;   // [rows, experts]: s (before bias)
};

// logits [rows, experts]; bias [experts] or null.
void route(const ModelConfig& c, const float* logits, const float* bias, int64_t rows, Routing& out);

// Backward of the routing weights: given dL/dweight [rows, k], accumulates dL/dlogits [rows, experts]
// (selection itself is piecewise constant).
void route_backward(const ModelConfig& c, const float* logits, const Routing& r, const float* dweight,
                    float* dlogits);

}  // namespace dseek
