#include "inference/speculative.h"

#include <algorithm>
#include <chrono>

#include "core/error.h"

namespace dseek {

int32_t draw_from(const std::vector<float>& p, Rng& rng) {
  double total = 0;
  for (float v : p) total += v;
  double u = rng.uniform() * total;
  int32_t last = 0;
  for (size_t i = 0; i < p.size(); i++) {
    if (p[i] <= 0) continue;
    last = int32_t(i);
    if ((u -= p[i]) < 0) return int32_t(i);
  }
  return last;
}

int32_t speculative_pick(const std::vector<float>& p, const std::vector<float>& q, int32_t draft, Rng& rng,
                         bool& accepted) {
  const double pd = p[size_t(draft)], qd = q[size_t(draft)];
  accepted = qd > 0 && (pd >= qd || rng.uniform() * qd < pd);
  if (accepted) return draft;
  std::vector<float> residual(p.size());
  double total = 0;
  for (size_t i = 0; i < p.size(); i++) total += residual[i] = std::max(0.0f, p[i] - q[i]);
  return total > 0 ? draw_from(residual, rng) : draw_from(p, rng);
}

GenerationStats SpeculativeGenerator::generate(const std::vector<int32_t>& prompt, Sampler& sampler,
                                               const StopConditions& stop, const std::function<bool(int32_t)>& on_token,
                                               SpeculativeStats* spec) {
  using clock = std::chrono::steady_clock;
  if (prompt.empty()) fail("generation needs a non-empty prompt");
  const ModelConfig& c = fwd_.model().config;
  const int64_t V = c.vocab_size, D = c.hidden_size, P = int64_t(prompt.size());
  SpeculativeStats sp;
  GenerationStats st;
  st.prompt_tokens = P;
  const int64_t budget = generation_budget(c, P, stop.max_tokens);
  KVCache cache = fwd_.new_cache(P + budget + 1), mtp = fwd_.new_mtp_cache(P + budget + 1);
  std::vector<float> logits(static_cast<size_t>(2 * V)), qlogits(static_cast<size_t>(V)), p, q;
  std::vector<int32_t> context = prompt;

  auto t0 = clock::now();
  fwd_.run({SeqChunk{&cache, prompt.data(), P}}, false, logits.data());
  // rows the MTP cache still needs: position j pairs h_j with t_{j+1}
  std::vector<float> hidden(fwd_.hidden(), fwd_.hidden() + P * D);
  std::vector<int32_t> next_tokens(prompt.begin() + 1, prompt.end());
  st.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();

  auto t1 = clock::now();
  st.stop_reason = "length";
  bool done = false;
  auto emit = [&](int32_t tok) {  // false: generation ends here
    st.generated_tokens++;
    context.push_back(tok);
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
      st.context_full = budget < stop.max_tokens;
      return false;
    }
    return true;
  };
  int32_t pending = sampler.sample(logits.data(), V, context);  // t_n: sampled, not yet fed
  done = !emit(pending);
  next_tokens.push_back(pending);
  while (!done) {
    if (st.generated_tokens + 1 >= budget) {  // room for one token only: a plain step
      fwd_.run({SeqChunk{&cache, &pending, 1}}, false, logits.data());
      sp.main_passes++;
      pending = sampler.sample(logits.data(), V, context);
      done = !emit(pending);
      break;
    }
    // draft t_{n+1} with the MTP module
    fwd_.run_mtp(mtp, next_tokens.data(), hidden.data(), int64_t(next_tokens.size()), qlogits.data());
    sampler.probabilities(qlogits.data(), V, context, q);
    const int32_t draft = draw_from(q, sampler.rng());
    sp.drafted++;
    // verify: the main model on [t_n, d]
    const int32_t feed[2] = {pending, draft};
    fwd_.run({SeqChunk{&cache, feed, 2}}, true, logits.data());
    sp.main_passes++;
    sampler.probabilities(logits.data(), V, context, p);
    bool accepted = false;
    const int32_t tok = speculative_pick(p, q, draft, sampler.rng(), accepted);
    if (accepted) {
      sp.accepted++;
      hidden.assign(fwd_.hidden(), fwd_.hidden() + 2 * D);  // h_n, h_{n+1}
      if (!emit(draft)) break;
      pending = sampler.sample(logits.data() + V, V, context);  // the bonus token t_{n+2} ~ p_{n+1}
      next_tokens = {draft, pending};
      done = !emit(pending);
    } else {
      cache.set_length(cache.length() - 1);  // d's row
      hidden.assign(fwd_.hidden(), fwd_.hidden() + D);  // h_n
      pending = tok;
      next_tokens = {tok};
      done = !emit(tok);
    }
  }
  st.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  if (spec) *spec = sp;
  return st;
}

}  // namespace dseek
