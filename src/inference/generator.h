// Token generation for one sequence: batched prefill of the prompt, then one decode step per token through
// the latent KV cache. Text-agnostic: stop strings are handled by the caller's on_token callback.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "inference/sampler.h"
#include "inference/forward.h"

namespace dseek {

struct StopConditions {
  int64_t max_tokens = 128;
  std::vector<int32_t> stop_ids;  // usually EOS
};

// Tokens a prompt of `prompt_len` may still generate: at most `max_tokens`, and the whole sequence stays within
// the positions the model was built for (max_position_embeddings); a prompt that fills them is an error.
int64_t generation_budget(const ModelConfig& c, int64_t prompt_len, int64_t max_tokens);

struct GenerationStats;
// After a generated token `tok` (already counted in st.generated_tokens and passed to nothing else): whether
// generation goes on. If not, st.stop_reason says why, checked in this order: on_token returned false ("stop"), a
// stop id ("eos"), the budget ("length"; st.context_full when the context, not max_tokens, set the budget).
bool continue_after(int32_t tok, const StopConditions& stop, int64_t budget,
                    const std::function<bool(int32_t)>& on_token, GenerationStats& st);

struct GenerationStats {
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
  std::string stop_reason;  // "eos", "length", "stop"
  bool context_full = false;  // "length" because the sequence reached max_position_embeddings
  double prefill_tps() const { return prefill_seconds > 0 ? double(prompt_tokens) / prefill_seconds : 0; }
  double decode_tps() const { return decode_seconds > 0 ? double(generated_tokens) / decode_seconds : 0; }
};

class Generator {
 public:
  explicit Generator(Forward& fwd) : fwd_(fwd) {}
  // on_token(id) is called for every generated token (including a final stop id); returning false stops.
  GenerationStats generate(const std::vector<int32_t>& prompt, Sampler& sampler, const StopConditions& stop,
                           const std::function<bool(int32_t)>& on_token);

 private:
  Forward& fwd_;
};

}  // namespace dseek
