// Generation for many sequences at once (GRPO rollouts, eval, distillation), as a client of the serving engine
// (engine.h): every request runs at once, the distinct prompts prefilled in one step, then one decode step per
// token over all active sequences (the weight products shared). Requests with the same prompt (a GRPO group) are
// the choices of one engine request: prefilled once, the cache and logits copied, each with its own seed.
#pragma once
#include <functional>
#include <vector>

#include "inference/generator.h"

namespace dseek {

struct GenerationRequest {
  std::vector<int32_t> prompt;
  SamplingParams sampling;
  StopConditions stop;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids (including a final stop id)
  std::string stop_reason;      // eos | length | stop
};

struct BatchStats {
  int64_t prompt_tokens = 0, generated_tokens = 0, steps = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

class BatchGenerator {
 public:
  explicit BatchGenerator(Forward& fwd) : fwd_(fwd) {}
  // on_token(request index, id) may return false to stop that sequence (stop strings).
  std::vector<GenerationResult> generate(const std::vector<GenerationRequest>& requests,
                                         const std::function<bool(size_t, int32_t)>& on_token = nullptr,
                                         BatchStats* stats = nullptr);

 private:
  Forward& fwd_;
};

}  // namespace dseek
