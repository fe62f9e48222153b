// Pretraining loop: micro-batches from a BatchSource, gradient accumulation, AdamW, the auxiliary-loss-free
// bias update, validation loss and bits per byte, progress line and metrics.jsonl, charts, atomic checkpoints
// and exact resumption (weights, optimizer moments, routing biases, data position).
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "inference/sampler.h"
#include "model/model.h"
#include "train/data_source.h"
#include "train/graph.h"
#include "train/mixed_precision.h"
#include "train/optimizer.h"
#include "train/run_dir.h"

namespace dseek {

struct TrainConfig {
  int64_t steps = 1000, batch_size = 8, seq_len = 256, grad_accum = 1;
  bool seq_len_given = false;  // false: the default, which follows a smaller model context
  uint64_t seed = 0;
  OptimizerConfig opt{.lr = 3e-4, .schedule = "constant"};
  int64_t decay_steps = 0;  // cosine / wsd horizon; 0: `steps` of the run when it was created
  int64_t save_every = 0, keep_checkpoints = 3;
  double save_minutes = 10;  // also checkpoint this often (wall time); 0: off
  int64_t eval_every = 0, eval_batches = 8, log_every = 1;
  PrecisionSettings mixed;  // products, loss scaling, optimizer moments (F32 master weights either way)
  double mtp_lambda = 0.3;
  double aux_alpha = 1e-4;   // sequence-wise balance loss weight (0: off)
  double bias_gamma = 1e-3;  // auxiliary-loss-free bias update speed (0: off)
  double time_limit = 0;     // seconds; 0: none
  double distill_weight = 0.0;  // weight of KL(teacher top-k || student) when the data has a teacher
  nlohmann::json to_json() const;
  static TrainConfig from_json(const nlohmann::json& j, const std::string& origin);
};

class Trainer {
 public:
  // A new run in `run_dir` (must not hold a checkpoint yet; a run without one is started over) from an initial model.
  static std::unique_ptr<Trainer> create(const std::string& run_dir, Model init, const DataSpec& data,
                                         const TrainConfig& cfg);
  // Continues the run in `run_dir` from its latest checkpoint. `overrides` may change steps, time_limit,
  // save_every, save_minutes, eval_every, log_every and keep_checkpoints; everything else is the run's own.
  static std::unique_ptr<Trainer> resume(const std::string& run_dir, const nlohmann::json& overrides);

  void train();
  int64_t step() const { return step_; }
  const Model& model() const { return model_; }
  // Mean loss and bits per byte over the validation windows.
  std::pair<double, double> evaluate();

 private:
  Trainer(const std::string& run_dir, Model model, const DataSpec& data, const TrainConfig& cfg);
  void save_checkpoint();
  double flops_per_token() const;

  RunDir run_;
  DataSpec data_;
  TrainConfig cfg_;
  Model model_;  // F32 master weights
  std::optional<SamplingParams> sampling_;  // generation_config.json's defaults, carried into every checkpoint
  ModelWeights grads_;
  std::unique_ptr<AdamW> opt_;
  std::unique_ptr<MixedPrecision> mixed_;  // the weights the products read, the loss scale
  std::unique_ptr<BatchSource> source_;
  std::vector<MicroBatch> val_batches_;  // fixed validation set
  double val_bytes_ = 0;                 // UTF-8 bytes of the validation targets (0: unknown)
  TrainGraph graph_;
  int64_t step_ = 0;
  double elapsed_ = 0;  // training seconds over all sessions
};

// Any checkpoint (BF16, FP8, mapped) as owned F32 master weights.
Model to_master_weights(Model m);

// A checkpoint folder's files: the model in Hugging Face layout, optimizer.safetensors, trainer_state.json, the
// tokenizer files from `tokenizer_dir` and generation_config.json (the model's special ids and, when given, the
// sampling defaults), so the folder is a complete model folder.
void write_checkpoint_files(const std::string& dir, const Model& model, const AdamW& opt, const nlohmann::json& state,
                            const std::string& tokenizer_dir, const std::optional<SamplingParams>& sampling);

// The sampling defaults of the model folder a run started from (its generation_config.json), none without one.
std::optional<SamplingParams> sampling_defaults_of(const Model& model);

}  // namespace dseek
