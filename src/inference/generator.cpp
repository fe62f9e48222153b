#include "inference/generator.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace dseek {

int64_t generation_budget(const ModelConfig& c, int64_t prompt_len, int64_t max_tokens) {
  const int64_t ctx = c.max_position_embeddings;
  if (prompt_len >= ctx)
    fail("the prompt has {} tokens, but the model's context is {} (max_position_embeddings): nothing can be generated",
         prompt_len, ctx);
  return std::min(max_tokens, ctx - prompt_len);
}

bool continue_after(int32_t tok, const StopConditions& stop, int64_t budget,
                    const std::function<bool(int32_t)>& on_token, GenerationStats& st) {
  const bool is_stop = std::find(stop.stop_ids.begin(), stop.stop_ids.end(), tok) != stop.stop_ids.end();
  if (!on_token(tok)) {
    st.stop_reason = "stop";
    return false;
  }
  if (is_stop) {
    st.stop_reason = "eos";
    return false;
  }
  if (st.generated_tokens >= budget) {
    st.stop_reason = "length";
    st.context_full = budget < stop.max_tokens;
    return false;
  }
  return true;
}

GenerationStats Generator::generate(const std::vector<int32_t>& prompt, Sampler& sampler, const StopConditions& stop,
                                    const std::function<bool(int32_t)>& on_token) {
  using clock = std::chrono::steady_clock;
  if (prompt.empty()) fail("generation needs a non-empty prompt");
  const int64_t V = fwd_.model().config.vocab_size;
  GenerationStats st;
  st.prompt_tokens = int64_t(prompt.size());
  const int64_t budget = generation_budget(fwd_.model().config, int64_t(prompt.size()), stop.max_tokens);
  KVCache cache = fwd_.new_cache(int64_t(prompt.size()) + budget);
  std::vector<float> logits(static_cast<size_t>(V));
  std::vector<int32_t> context = prompt;

  auto t0 = clock::now();
  fwd_.run({SeqChunk{&cache, prompt.data(), int64_t(prompt.size())}}, false, logits.data());
  st.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();

  auto t1 = clock::now();
  st.stop_reason = "length";
  while (st.generated_tokens < budget) {
    const int32_t tok = sampler.sample(logits.data(), V, context);
    st.generated_tokens++;
    context.push_back(tok);
    if (!continue_after(tok, stop, budget, on_token, st)) break;
    fwd_.run({SeqChunk{&cache, &context.back(), 1}}, false, logits.data());
  }
  st.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  return st;
}

}  // namespace dseek
