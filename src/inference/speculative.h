// MTP speculative decoding (DeepSeek-V3 §5.4.3): the model's own multi-token-prediction module drafts the token
// after the next one, and the main model checks the draft in the same forward pass that computes the next token,
// so an accepted draft yields two tokens for one pass of the main model.
//
// One step, with t_n sampled and not yet fed, and h_j the main model's last hidden state at position j:
//   draft   q = MTP(h_{n-1}, Emb(t_n)) -> d ~ q                       (the MTP module's own latent cache)
//   verify  the main model runs [t_n, d]: p_n for position n+1 and p_{n+1} for position n+2
//   accept  d with probability min(1, p_n(d) / q(d)); then a bonus token ~ p_{n+1}
//   reject  t_{n+1} ~ norm(max(0, p_n - q)) and d's row is dropped from the cache
// The speculative-sampling rule (Leviathan et al. 2023; Chen et al. 2023) makes every token distributed exactly
// as the main model samples it (temperature, top-k, top-p, min-p, repetition penalty included, as
// Sampler::probabilities gives them); at temperature 0 the output is plain greedy decoding.
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
  int64_t main_passes = 0;            // forward passes of the main model after the prompt
  double acceptance() const { return drafted ? double(accepted) / double(drafted) : 0; }
};

class SpeculativeGenerator {
 public:
  // The model must hold its MTP module (Model::load with LoadOptions{.mtp = true}).
  explicit SpeculativeGenerator(Forward& fwd) : fwd_(fwd) {}
  // As Generator::generate; stats of the drafts in `spec`.
  GenerationStats generate(const std::vector<int32_t>& prompt, Sampler& sampler, const StopConditions& stop,
                           const std::function<bool(int32_t)>& on_token, SpeculativeStats* spec = nullptr);

 private:
  Forward& fwd_;
};

}  // namespace dseek
