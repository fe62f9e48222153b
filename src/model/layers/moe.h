// DeepSeekMoE feed-forward y = sum_k w_k expert_k(x) + shared(x), forward beside backward: router (F32),
// routing (model/router.h), dispatch to the experts and combine (expert_dispatch.h), the sequence-wise balance
// loss. Decode-sized inputs run every expert's gate and up (and the shared expert's) in one pass over their
// weights, then every down; larger inputs run one expert per thread.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/layers/batch.h"
#include "model/layers/expert_dispatch.h"
#include "model/layers/ffn.h"
#include "model/router.h"
#include "model/weights.h"

namespace dseek {

struct MoECache {
  std::vector<float> logits;  // router logits [R, E]
  Routing routing;
  std::vector<ExpertBatch> experts;  // experts that received rows, by index
  FFNCache shared;
  std::vector<int64_t> load;  // selections per expert in this forward
  double aux_loss = 0;
};

// y[R, D] = MoE(x[R, D]) for `seqs` sequences of T rows (the balance loss is per sequence; seqs = 0: none).
void moe_forward(const ModelConfig& c, int64_t R, int64_t seqs, int64_t T, const float* x, const MoEWeights& w,
                 const LayerOptions& o, MoECache& mc, float* y, ExpertDispatch& dispatch = local_dispatch());
void moe_backward(const ModelConfig& c, int64_t R, int64_t seqs, int64_t T, const float* x, const MoEWeights& w,
                  MoEWeights& gw, const LayerOptions& o, const MoECache& mc, const float* dy, float* dx,
                  ExpertDispatch& dispatch = local_dispatch());

}  // namespace dseek
