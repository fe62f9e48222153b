// GRPO trainer (DeepSeek-R1-Zero recipe): for each prompt, G completions sampled by the inference engine on
// the policy's own weights (shared in place, never copied through disk); rule-based or command rewards;
// group-normalised advantages; mu updates of the clipped surrogate with a k3 KL penalty to a frozen
// reference; periodic held-out accuracy; metrics, charts, checkpoints and exact resumption.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "model/model.h"
#include "posttrain/grpo_loss.h"
#include "posttrain/prompts_task.h"
#include "posttrain/reward_command.h"
#include "posttrain/task.h"
#include "tokenizer/tokenizer.h"
#include "train/graph.h"
#include "train/mixed_precision.h"
#include "train/optimizer.h"
#include "train/run_dir.h"

namespace dseek {

struct GrpoConfig {
  std::string task;          // built-in task name, or empty with prompts_file
  TaskOptions task_options;
  std::string prompts_file;  // JSON Lines {"prompt": ..., "answer": ...}
  std::string reward_command;
  double accuracy_weight = 1.0, format_weight = 0.1;
  int64_t steps = 100, prompts_per_step = 8, group_size = 8, mu = 1, micro_batch = 16;
  int64_t max_new_tokens = 96;
  float temperature = 1.0f, top_p = 1.0f;
  int64_t top_k = 0;
  GrpoLossConfig loss;
  OptimizerConfig opt{.lr = 1e-5, .weight_decay = 0.0, .schedule = "constant"};
  PrecisionSettings mixed;
  int64_t eval_every = 0, eval_n = 128, save_every = 0, keep_checkpoints = 3, log_every = 1;
  double save_minutes = 10;  // also checkpoint this often (wall time); 0: off
  uint64_t seed = 0;
  double time_limit = 0;
  nlohmann::json to_json() const;
  static GrpoConfig from_json(const nlohmann::json& j, const std::string& origin);
};

class GrpoTrainer {
 public:
  static std::unique_ptr<GrpoTrainer> create(const std::string& run_dir, const std::string& model_dir,
                                             const GrpoConfig& cfg);
  static std::unique_ptr<GrpoTrainer> resume(const std::string& run_dir, const nlohmann::json& overrides);
  void train();

 private:
  GrpoTrainer(const std::string& run_dir, Model policy, std::optional<Model> reference, const std::string& tokenizer_dir,
              const GrpoConfig& cfg);
  void save_checkpoint();
  double held_out_accuracy(double* format_rate);

  RunDir run_;
  GrpoConfig cfg_;
  std::string tokenizer_dir_;
  Tokenizer tok_;
  std::unique_ptr<Task> task_;
  std::optional<RewardCommand> reward_cmd_;
  Model policy_;  // F32 master weights
  ModelWeights grads_;
  std::optional<Model> reference_;
  std::unique_ptr<AdamW> opt_;
  std::unique_ptr<MixedPrecision> mixed_;  // the weights the products (and the rollouts) read, the loss scale
  TrainGraph graph_;
  int64_t step_ = 0;
  int constant_reward_warnings_ = 0;  // printed so far (at most 3)
  uint64_t cursor_ = 0;  // next training example
  double elapsed_ = 0;
};

}  // namespace dseek
