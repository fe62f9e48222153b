// AdamW with PyTorch's semantics (decoupled decay applied before the Adam step), learning-rate schedules,
// global-norm clipping. Decay applies to matrices, embeddings and the router, not to norms or biases.
#pragma once
#include <string>
#include <vector>

#include "formats/safetensors.h"
#include "model/weights.h"

namespace dseek {

struct OptimizerConfig {
  double lr = 3e-4;
  double min_lr_ratio = 0.1;  // final lr = lr * min_lr_ratio
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double grad_clip = 1.0;     // <= 0: off
  int64_t warmup = 0;
  std::string schedule = "cosine";  // cosine | wsd (warmup-stable-decay) | constant
  double decay_fraction = 0.2;      // wsd: final fraction of steps spent decaying
  bool bf16_moments = false;        // exp_avg and exp_avg_sq stored in BF16 (rounded to nearest even each step)
};

// lr for 0-based `step` of `total` steps.
double lr_at(const OptimizerConfig& o, int64_t step, int64_t total);

struct OptimizerStep {
  double grad_norm = 0;  // before clipping
  double lr = 0;
};

class AdamW {
 public:
  AdamW(const OptimizerConfig& cfg, const ModelConfig& mc, ModelWeights& params, ModelWeights& grads);
  // One update with learning rate lr; step counter t advances (1-based inside).
  OptimizerStep step(double lr);
  double grad_norm() const;
  void scale_grads(float s);
  void zero_grads();
  int64_t t() const { return t_; }
  // Moments as "exp_avg.<name>", "exp_avg_sq.<name>" plus the step count, for checkpoints.
  NamedTensors state() const;
  void load_state(const SafetensorsFile& f);
  const OptimizerConfig& config() const { return cfg_; }

 private:
  struct Slot {
    std::string name;
    Tensor* param;
    Tensor* grad;
    Tensor m, v;
    bool decay;
  };
  OptimizerConfig cfg_;
  std::vector<Slot> slots_;
  int64_t t_ = 0;
};

}  // namespace dseek
