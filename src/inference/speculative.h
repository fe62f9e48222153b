// MTP speculative decoding (DeepSeek-V3 §5.4.3): the model's own multi-token-prediction module drafts the token
// after the next one, and the main model checks the draft in the same forward pass that computes the next token,
// so an accepted draft yields two tokens for one pass of the main model.
//
// One step, with t_n sampled and not yet fed, and h_j the main model's last hidden state at position j:
//   draft   q_1 = MTP(h_{n-1}, Emb(t_n)) -> d_1 ~ q_1; for k > 1 the same module again, its own output hidden
//           standing in for the main model's (not known yet): q_j = MTP(h^1, Emb(d_{j-1})) -> d_j
//   verify  the main model runs [t_n, d_1 .. d_k]: p_0 .. p_k
//   accept  d_j in order with probability min(1, p_{j-1}(d_j) / q_j(d_j)); all accepted: a bonus token ~ p_k
//   reject  at the first rejected d_j: t ~ norm(max(0, p_{j-1} - q_j)); the rows after it leave the caches
// (the MTP cache keeps only rows computed from the main model's own hidden states). The speculative-sampling rule
// (Leviathan et al. 2023; Chen et al. 2023) makes every token distributed exactly as the main model samples it
// (temperature, top-k, top-p, min-p, repetition penalty included, as Sampler::probabilities gives them); at
// temperature 0 the output is plain greedy decoding.
#pragma once
#include <functional>
#include <vector>

#include "core/rng.h"
#include "inference/generator.h"

namespace dseek {

// Draft d ~ q kept with probability min(1, p(d)/q(d)), else a token from norm(max(0, p - q)) (p when that is
// all zero, which only happens when p == q). `accepted` says which.
int32_t speculative_pick(const std::vector<float>& p, const std::vector<float>& q, int32_t draft, Rng& rng,
                         bool& accepted);
// A token drawn from probabilities p.
int32_t draw_from(const std::vector<float>& p, Rng& rng);

struct SpeculativeStats {
  int64_t drafted = 0, accepted = 0;  // draft tokens proposed and kept
  int64_t first_drafted = 0, first_accepted = 0;  // the first draft token of each step
  int64_t main_passes = 0;            // forward passes of the main model after the prompt
  double acceptance() const { return drafted ? double(accepted) / double(drafted) : 0; }
  double first_acceptance() const { return first_drafted ? double(first_accepted) / double(first_drafted) : 0; }
};

class SpeculativeGenerator {
 public:
  // The model must hold its MTP module (Model::load with LoadOptions{.mtp = true}).
  // draft_tokens: k, the tokens drafted per step (>= 1).
  explicit SpeculativeGenerator(Forward& fwd, int draft_tokens = 1);
  // As Generator::generate; stats of the drafts in `spec`.
  GenerationStats generate(const std::vector<int32_t>& prompt, Sampler& sampler, const StopConditions& stop,
                           const std::function<bool(int32_t)>& on_token, SpeculativeStats* spec = nullptr);

 private:
  Forward& fwd_;
  int k_;
};

}  // namespace dseek
