// Held-out evaluation of a model on a task: completions for examples of a split (chat template, batched
// decoding, greedy by default), scored with the task's rule-based rewards. Used by `dseek eval` and for
// periodic evaluation during GRPO.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "inference/batch_generator.h"
#include "model/model.h"
#include "posttrain/task.h"
#include "tokenizer/tokenizer.h"

namespace dseek {

struct EvalOptions {
  std::string split = "eval";
  uint64_t start = 0, n = 64;  // examples start .. start + n - 1 of the split
  int64_t max_tokens = 256;    // per completion
  // Greedy by default. With temperature > 0, example i samples with a seed derived from (seed, i), so the
  // result does not depend on the batch size.
  SamplingParams sampling{.temperature = 0.0f};
  size_t batch = 16;                                         // sequences decoded together
  std::function<void(size_t done, size_t total)> progress;  // called after each batch
};

struct EvalRecord {
  uint64_t index = 0;  // example index in the split
  TaskExample example;
  std::string completion;  // as scored (see completion_text)
  Reward reward;
  int64_t tokens = 0;       // generated tokens, a final stop token included
  std::string stop_reason;  // eos | length
};

struct EvalResult {
  std::vector<EvalRecord> records;  // in example order
  size_t correct = 0, formatted = 0;
  double accuracy = 0, format_rate = 0;  // correct / n, formatted / n
  double mean_tokens = 0;
  double seconds = 0;  // generation wall time (prefill + decode)
};

EvalResult evaluate_task(Model& model, const Tokenizer& tok, const Task& task, const EvalOptions& opt);

// The prompt as the model sees it: [{"role":"user","content":ex.prompt}] through the chat template, with the
// generation prompt. Fails when an id is outside the model's vocabulary.
std::vector<int32_t> task_prompt_ids(const Tokenizer& tok, const TaskExample& ex, const ModelConfig& config);
// Generated ids as text to score: decoded with special tokens (EOS) dropped, and "<think>\n" in front when
// the template's generation prompt already opened the reasoning block (DeepSeek-R1), so format_ok sees the
// whole <think>...</think><answer>...</answer>.
std::string completion_text(const Tokenizer& tok, const std::vector<int32_t>& generated);
// Ids that end a completion: the model config's and the tokenizer's end-of-sequence ids.
std::vector<int32_t> completion_stop_ids(const ModelConfig& config, const Tokenizer& tok);

}  // namespace dseek
