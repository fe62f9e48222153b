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

SpeculativeGenerator::SpeculativeGenerator(Forward& fwd, int draft_tokens) : fwd_(fwd), k_(draft_tokens) {
  if (k_ < 1) fail("--draft-tokens must be >= 1, got {}", k_);
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
  KVCache cache = fwd_.new_cache(P + budget + k_), mtp = fwd_.new_mtp_cache(P + budget + k_);
  std::vector<float> logits(static_cast<size_t>((k_ + 1) * V)), qlogits(static_cast<size_t>(V)), p;
  std::vector<std::vector<float>> q(static_cast<size_t>(k_));
  std::vector<int32_t> context = prompt;

  auto t0 = clock::now();
  fwd_.run({SeqChunk{&cache, prompt.data(), P}}, false, logits.data());
  // rows the MTP cache still needs: position j pairs h_j with t_{j+1}
  std::vector<float> hidden(fwd_.hidden(), fwd_.hidden() + P * D);
  std::vector<int32_t> next_tokens(prompt.begin() + 1, prompt.end());
  st.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();

  auto t1 = clock::now();
  st.stop_reason = "length";
  auto emit = [&](int32_t tok) {  // false: generation ends here
    st.generated_tokens++;
    context.push_back(tok);
    return continue_after(tok, stop, budget, on_token, st);
  };
  int32_t pending = sampler.sample(logits.data(), V, context);  // t_n: sampled, not yet fed
  bool done = !emit(pending);
  next_tokens.push_back(pending);
  std::vector<int32_t> feed, drafts;
  while (!done) {
    // at most the tokens still allowed after t_n, less the bonus
    const int64_t k = std::min<int64_t>(k_, budget - st.generated_tokens - 1);
    if (k <= 0) {  // room for one token only: a plain step
      fwd_.run({SeqChunk{&cache, &pending, 1}}, false, logits.data());
      sp.main_passes++;
      pending = sampler.sample(logits.data(), V, context);
      done = !emit(pending);
      break;
    }
    // draft d_1 .. d_k with the MTP module; only the rows from the main model's hidden states stay in its cache
    const int64_t mtp_keep = mtp.length() + int64_t(next_tokens.size());
    fwd_.run_mtp(mtp, next_tokens.data(), hidden.data(), int64_t(next_tokens.size()), qlogits.data());
    drafts.clear();
    std::vector<int32_t> draft_context = context;
    for (int64_t j = 0; j < k; j++) {
      if (j > 0) {
        const std::vector<float> prev(fwd_.mtp_hidden_last(), fwd_.mtp_hidden_last() + D);
        fwd_.run_mtp(mtp, &drafts.back(), prev.data(), 1, qlogits.data());
      }
      sampler.probabilities(qlogits.data(), V, draft_context, q[size_t(j)]);
      drafts.push_back(draw_from(q[size_t(j)], sampler.rng()));
      draft_context.push_back(drafts.back());
    }
    mtp.set_length(mtp_keep);
    sp.drafted += k;
    sp.first_drafted++;
    // verify: the main model on [t_n, d_1 .. d_k]
    feed.assign(1, pending);
    feed.insert(feed.end(), drafts.begin(), drafts.end());
    const int64_t n0 = cache.length();
    fwd_.run({SeqChunk{&cache, feed.data(), k + 1}}, true, logits.data());
    sp.main_passes++;
    const std::vector<float> verified(fwd_.hidden(), fwd_.hidden() + (k + 1) * D);  // h_n .. h_{n+k}
    int64_t kept = 0;  // drafts accepted
    int32_t tok = -1;
    for (int64_t j = 0; j < k && !done; j++) {
      sampler.probabilities(logits.data() + j * V, V, context, p);
      bool accepted = false;
      tok = speculative_pick(p, q[size_t(j)], drafts[size_t(j)], sampler.rng(), accepted);
      if (j == 0) sp.first_accepted += accepted;
      if (!accepted) break;
      sp.accepted++;
      kept++;
      done = !emit(tok);
      tok = -1;
    }
    if (done) break;
    if (kept == k) tok = sampler.sample(logits.data() + k * V, V, context);  // the bonus token ~ p_k
    // the main cache keeps t_n and the accepted drafts; the next MTP rows pair their hidden states with the
    // tokens that follow them
    cache.set_length(n0 + 1 + kept);
    hidden.assign(verified.begin(), verified.begin() + (1 + kept) * D);
    next_tokens.assign(drafts.begin(), drafts.begin() + kept);
    next_tokens.push_back(tok);
    pending = tok;
    done = !emit(tok);
  }
  st.decode_seconds = std::chrono::duration<double>(clock::now() - t1).count();
  if (spec) *spec = sp;
  return st;
}

}  // namespace dseek
