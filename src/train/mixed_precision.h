// The precision of a training run (docs/low-precision.md): which products run in which format, the copies of
// the F32 master weights the products read, the dynamic loss scale of F16 and the optimizer moments' dtype.
//
//   f32   every product in F32
//   bf16  every product with BF16 operands, F32 accumulation
//   fp8   the Linears of the decoder layers and MTP blocks (Fprop, Dgrad, Wgrad) on E4M3 operands with
//         fine-grained scales (kernels/lowp.h); embedding, output head, router, norms and attention products
//         in BF16, as the DeepSeek-V3 report keeps them
//   fp16  the same Linears on F16 operands with F16 outputs, the loss multiplied by a dynamic scale (PyTorch's
//         GradScaler rule: start 2^16, halve and skip the step on inf/NaN gradients, double after N clean steps)
// Master weights and gradient accumulation are F32 in every case.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "core/precision.h"
#include "kernels/lowp.h"
#include "model/weights.h"
#include "train/optimizer.h"

namespace dseek {

enum class TrainPrecision { F32, BF16, FP8, F16 };
std::string_view train_precision_name(TrainPrecision p);

struct PrecisionSettings {
  TrainPrecision precision = TrainPrecision::F32;
  bool fp8_tensor_scales = false;  // fp8_scales: "tile" (1x128 activations, 128x128 weights) or "tensor"
  bool fp8_pow2_scales = false;    // scales rounded up to powers of two (UE8M0)
  double loss_scale = 65536;       // fp16: initial dynamic loss scale; 0: no loss scaling
  int64_t loss_scale_window = 2000;  // fp16: clean steps before the scale doubles
  bool bf16_moments = false;       // moments: "f32" or "bf16" (AdamW's exp_avg and exp_avg_sq)

  // Products outside the recipe's Linears (attention, head; for f32/bf16 all of them).
  Precision products() const;
  // fp8: FFN and expert activations cached for the backward in FP8 (LayerOptions::fp8_activations)
  bool fp8_activations() const { return precision == TrainPrecision::FP8; }
  bool loss_scaling() const { return precision == TrainPrecision::F16 && loss_scale > 0; }
  // Keys "precision", "fp8_scales", "fp8_pow2_scales", "loss_scale", "loss_scale_window", "moments".
  void write(nlohmann::json& j) const;
  void read(const nlohmann::json& j, const std::string& origin);
};

// Help text of the flags above, for the commands that train.
const std::vector<std::pair<std::string, std::string>>& precision_setting_flags();

// Steps (0-based) at which a test injects an inf into a gradient after the backward: the environment variable
// DSEEK_TEST_OVERFLOW_STEPS, a comma-separated list (empty: none).
std::vector<int64_t> overflow_injection_steps();

class MixedPrecision {
 public:
  // `master` must outlive this object; the compute copy shares what it does not convert.
  MixedPrecision(const PrecisionSettings& s, const ModelConfig& c, ModelWeights& master);

  // The weights the forward and backward read (the master weights themselves for f32).
  const ModelWeights& compute() const { return compute_; }
  // After the master weights changed (every optimizer step, a resume).
  void refresh();

  // Multiplier of the loss (1 without loss scaling).
  float loss_scale() const { return float(scale_); }
  // After the backward of a step: gradients divided by loss_scale() * accumulation; with loss scaling, false
  // when they hold inf or NaN (the step must be skipped: the scale halves), else true (the scale doubles after
  // loss_scale_window clean steps).
  bool unscale(AdamW& opt, int64_t grad_accum);
  // Adds loss_scale / skipped_steps (fp16) and the fractions of operand values lost to underflow and
  // saturation since the last call (fp8, fp16) to a metrics row; resets the counts.
  void add_metrics(nlohmann::json& rec);
  void reset_counts();
  // Loss-scale state for the checkpoint's trainer_state.json ("loss_scaler"), and back.
  nlohmann::json state() const;
  void restore(const nlohmann::json& trainer_state);

 private:
  PrecisionSettings s_;
  const ModelConfig& c_;
  ModelWeights& master_;
  ModelWeights compute_;
  std::unique_ptr<LowPrecisionRecipe> recipe_;
  double scale_ = 1;
  int64_t clean_steps_ = 0, skipped_ = 0;
  bool last_skipped_ = false;
};

}  // namespace dseek
