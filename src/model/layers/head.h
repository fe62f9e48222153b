// Output head: final RMSNorm then logits = h W^T (tied to the embedding or its own matrix); for training, the
// head fused with its loss so that no [rows, vocab] buffer is held, forward and gradient in one pass.
#pragma once
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "kernels/matmul.h"
#include "model/config.h"
#include "model/weights.h"

namespace dseek {

// logits[n, V] = norm(x[rows[i]]) W^T for the listed rows (all rows when `rows` is null, n = R).
void head_logits(const ModelConfig& c, const ModelWeights& w, const float* x, int64_t R, const std::vector<int64_t>* rows,
                 float* logits);

// Fused lm_head and loss over rows in chunks (no [R, vocab] buffer). For row r with target t_r >= 0 and
// q = softmax(h_r W^T), lp_r = log q[t_r]:
//   cross-entropy:  loss += ce_scale * (-lp_r)
//   policy loss:    loss += f_r(lp_r) with (f_r, f_r') from `policy`   (GRPO: clipped surrogate and KL)
//   distillation:   loss += soft_weight * KL(p_r || q) for soft targets p_r (top-k of a teacher, sums to 1)
// Gradient wrt the logits: c_r (onehot - q) + soft_weight (q - p_r), with c_r = -ce_scale or f_r'(lp_r).
struct HeadLoss {
  const int32_t* targets = nullptr;
  float ce_scale = 1.0f;
  std::function<std::pair<double, double>(int64_t row, float logp)> policy;  // replaces cross-entropy if set
  const std::vector<std::vector<std::pair<int32_t, float>>>* soft = nullptr;  // [R] soft targets
  float soft_weight = 0.0f;
  float grad_scale = 1.0f;  // multiplier of the gradient only (loss scaling)
  float* logp_out = nullptr;  // [R] log q[t_r] (0 where t_r < 0)
  float* logits_out = nullptr;  // [R, V] the logits of every row (for tests comparing with inference)
  // [R] the topk most likely next tokens with their probabilities renormalised over them (rows with a target)
  int topk = 0;
  std::vector<std::vector<std::pair<int32_t, float>>>* topk_out = nullptr;
};
struct HeadLossResult {
  double loss_sum = 0;  // the weighted loss (what the gradient is of)
  double ce_sum = 0;    // sum of -lp_r over counted rows (for reporting)
  double kl_sum = 0;    // sum of the soft-target KL over rows that have them
  int64_t count = 0;    // rows with a target
};
HeadLossResult lm_head_loss(int64_t R, const float* h, const Linear& head, const HeadLoss& spec, float* dh, Tensor* dW,
                            Precision p);

// The plain case: mean-style cross-entropy with one scale for every row.
struct CrossEntropyResult {
  double loss_sum = 0;
  int64_t count = 0;
};
CrossEntropyResult lm_head_cross_entropy(int64_t R, const float* h, const Linear& head, const int32_t* targets,
                                         float scale, float* dh, Tensor* dW, Precision p);

}  // namespace dseek
