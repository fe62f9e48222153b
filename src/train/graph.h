// Forward and backward of the whole model for one micro-batch: embedding, decoder layers, final norm and
// lm_head with cross-entropy, the D multi-token-prediction modules (docs/training-spec.md), the sequence-wise
// balance loss. Activations live here between the forward and the backward.
#pragma once
#include <functional>
#include <vector>

#include "core/memory.h"
#include "model/model.h"
#include "model/layers/decoder_layer.h"
#include "model/layers/mtp.h"

namespace dseek {

struct MicroBatch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> inputs;   // [B, T]
  std::vector<int32_t> targets;  // [B, T]; -1: not counted (prompt tokens, padding, document ends)
  TrainShape shape;              // positions / document masks; TrainShape::dense(B, T) for plain text
  // distillation: per row, a teacher's top-k distribution over the next token (empty rows: none)
  std::vector<std::vector<std::pair<int32_t, float>>> soft_targets;
  // tokens [B, T+1] -> inputs tokens[:, :T], targets tokens[:, 1:]
  static MicroBatch from_tokens(const int32_t* tokens, int64_t B, int64_t T);
};

struct LossBreakdown {
  double main = 0;  // mean cross-entropy of the next token
  double mtp = 0;   // mean over depths of the MTP cross-entropies (before lambda)
  double aux = 0;   // balance loss (already times alpha)
  double policy = 0;  // sum of the per-row policy losses (when GraphOptions::policy is set)
  double soft_kl = 0; // mean KL to the soft targets over rows that have them
  double total = 0;
  int64_t tokens = 0;
  std::vector<std::vector<int64_t>> load;  // per MoE layer run (main layers, then MTP blocks): selections per expert
  // the checkpoint layer index of each `load` row: model.layers.N, MTP block k as num_hidden_layers + k (the
  // index DeepSeek-V3's checkpoints give it)
  std::vector<int64_t> load_layers;
};

struct GraphOptions {
  TrainOptions layer;
  double mtp_lambda = 0.3;
  bool use_mtp = true;
  // Multiplier of every loss term's gradient (dynamic loss scaling); the reported losses are not scaled.
  float loss_scale = 1.0f;
  // Main head: if set, a per-row loss f(row, log q[target]) -> (f, df/dlogp) replaces the mean cross-entropy
  // (GRPO's clipped surrogate and KL); `main` then reports the mean cross-entropy and `total` includes f.
  std::function<std::pair<double, double>(int64_t row, float logp)> policy;
  float soft_weight = 0.0f;         // weight of KL(teacher top-k || student) on rows with soft targets
  std::vector<float>* logp_out = nullptr;  // [R] log q[target] of the main head
  std::vector<float>* logits_out = nullptr;  // [R, V] the main head's logits
  int topk = 0;                            // with topk_out: the main head's top-k distribution per target row
  std::vector<std::vector<std::pair<int32_t, float>>>* topk_out = nullptr;
};

class TrainGraph {
 public:
  explicit TrainGraph(const ModelConfig& c) : c_(c) { keep_freed_memory(); }
  // Losses of the micro-batch; with grads, accumulates d(total)/d(weights) into *grads.
  LossBreakdown run(const ModelWeights& w, ModelWeights* grads, RopeTable& rope, const MicroBatch& mb,
                    const GraphOptions& o);

 private:
  const ModelConfig& c_;
  std::vector<LayerCache> layers_;
  std::vector<MTPCache> mtp_;
};

// Gradient (or optimizer moment) buffers shaped like the weights, F32 zeros; tied tensors alias.
ModelWeights zeros_like_weights(const ModelConfig& c, bool mtp);

}  // namespace dseek
