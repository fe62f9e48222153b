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

// Backward of the routing weights: given dL/dweight [rows, k] and optionally dL/dscores [rows, experts]
// (from the balance loss), accumulates dL/dlogits [rows, experts] (selection itself is piecewise constant).
void route_backward(const ModelConfig& c, const Routing& r, const float* dweight, const float* dscores,
                    float* dlogits);

// Sequence-wise balance loss of one MoE layer (DeepSeek-V3 eq. 17-20) over `seqs` sequences of `T` rows:
// alpha * mean_b sum_i f_i P_i with f_i = N_r / (K_r T) #selected_i, P_i = mean_t s_it / sum_j s_jt.
// If dscores is non-null, accumulates its gradient with respect to the scores s.
double sequence_balance_loss(const Routing& r, int64_t seqs, int64_t T, double alpha, float* dscores);

}  // namespace dseek
