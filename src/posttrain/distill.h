// Distillation into a smaller student: the teacher samples completions for task prompts (rejection sampling
// keeps only those its verifier accepts, as for DeepSeek-R1's distilled models), the student is fine-tuned
// on them as chats; with matching vocabularies an extra loss pulls the student's next-token distribution
// towards the teacher's top-k (KL), computed once per conversation and cached across epochs.
#pragma once
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/model.h"
#include "posttrain/task.h"
#include "train/trainer.h"

namespace dseek {

// Adds the teacher's top-k distributions as soft targets to every micro-batch of an inner source.
// Each packed conversation (a run of rows sharing key_begin) is run through the teacher on its own, so its
// targets do not depend on what it was packed with, and memoised by its tokens: later epochs cost no teacher work.
class DistillSource : public BatchSource {
 public:
  DistillSource(std::unique_ptr<BatchSource> inner, const std::string& teacher_dir, int64_t top_k);
  MicroBatch next(int64_t B, int64_t T) override;
  nlohmann::json state() const override { return inner_->state(); }
  void restore(const nlohmann::json& s) override { inner_->restore(s); }

 private:
  using TopK = std::vector<std::pair<int32_t, float>>;
  struct Entry {
    std::vector<int32_t> inputs, targets;  // the segment, to tell hash collisions apart
    std::vector<TopK> soft;                // per position
  };
  const Entry& teacher_targets(const int32_t* inputs, const int32_t* targets, int64_t L);

  std::unique_ptr<BatchSource> inner_;
  Model teacher_;
  int64_t top_k_;
  std::unordered_multimap<uint64_t, Entry> cache_;
};

struct DistillConfig {
  std::string teacher, student, task, prompts_file, out;
  TaskOptions task_options;
  int64_t prompts = 512, samples_per_prompt = 4, max_new_tokens = 96, batch = 128;  // batch: sequences sampled at once
  float temperature = 0.8f;
  bool rejection = true;
  int64_t top_k = 0;  // > 0: logit-level KL to the teacher's top-k (needs the same vocabulary)
  TrainConfig train;
};

struct DistillStats {
  int64_t generated = 0, kept = 0;
  double teacher_accuracy = 0, seconds = 0;
};

// Generates OUT/distill_data.jsonl with the teacher, then trains the student (a model folder or a config.json
// initialised randomly) on it in OUT/student. An OUT that holds a student checkpoint is refused (resume it with
// distill_resume); teacher data left by a run stopped earlier is reused only if it was sampled with the same
// settings (OUT/distill.json). A student folder with a tokenizer must have the teacher's, compared by content.
DistillStats distill(const DistillConfig& c);

// Continues the student's training in OUT/student from its latest checkpoint; `overrides` are training settings
// given again (steps, time_limit, save and log cadence).
void distill_resume(const std::string& out, const nlohmann::json& overrides);

}  // namespace dseek
