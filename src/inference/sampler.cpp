#include "inference/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_set>

#include "core/error.h"

namespace dseek {

double log_sum_exp(const float* logits, int64_t vocab) {
  const float mx = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; i++) sum += std::exp(double(logits[i] - mx));
  return double(mx) + std::log(sum);
}

void check_sampling_params(const SamplingParams& p, const std::function<std::string(std::string_view)>& named) {
  if (!(std::isfinite(p.temperature) && p.temperature >= 0))
    fail("{} must be a finite number >= 0 (0: greedy), got {}", named("temperature"), p.temperature);
  if (!(p.top_p > 0 && p.top_p <= 1)) fail("{} must be in (0, 1] (1: off), got {}", named("top_p"), p.top_p);
  // min_p above 1 keeps only the top token (the cut is capped at p_max)
  if (!(p.min_p >= 0 && std::isfinite(p.min_p)))
    fail("{} must be a finite number >= 0 (0: off), got {}", named("min_p"), p.min_p);
  if (p.top_k < 0) fail("{} must be >= 0 (0: off), got {}", named("top_k"), p.top_k);
  if (!(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0))
    fail("{} must be a finite number > 0 (1: off), got {}", named("repetition_penalty"), p.repetition_penalty);
}

Sampler::Sampler(SamplingParams p) : p_(p), rng_(p.seed) {
  check_sampling_params(p, [](std::string_view param) { return "sampling: " + std::string(param); });
}

void Sampler::prepare(float* logits, int64_t V, const std::vector<int32_t>& context) {
  // -infinity is a token masked out (constrained decoding); NaN and +infinity come from a broken model
  for (int64_t i = 0; i < V; i++)
    if (std::isnan(logits[i]) || logits[i] == std::numeric_limits<float>::infinity())
      fail("sampling: the model produced a non-finite logit ({} for token {}): its weights hold NaN or infinity "
           "(a diverged or corrupted checkpoint)", logits[i], i);
  if (*std::max_element(logits, logits + V) == -std::numeric_limits<float>::infinity())
    fail("sampling: every token is masked out (all logits are -infinity)");
  if (p_.repetition_penalty != 1.0f) {
    std::unordered_set<int32_t> seen(context.begin(), context.end());
    for (int32_t t : seen) {
      if (t < 0 || t >= V) continue;
      logits[t] = logits[t] > 0 ? logits[t] / p_.repetition_penalty : logits[t] * p_.repetition_penalty;
    }
  }
}

int32_t Sampler::sample(float* logits, int64_t V, const std::vector<int32_t>& context) {
  prepare(logits, V, context);
  if (p_.temperature <= 0.0f) return int32_t(std::max_element(logits, logits + V) - logits);

  // p_i = e^((l_i - max) / T), unnormalised, in vocabulary order (p_max = 1)
  const float mx = *std::max_element(logits, logits + V);
  const float inv_t = 1.0f / p_.temperature;
  probs_.resize(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; i++) probs_[size_t(i)] = std::exp((logits[i] - mx) * inv_t);
  // min-p keeps p_i >= min_p * p_max; capped at p_max = 1 so the most likely token always stays
  const float min_p_cut = std::clamp(p_.min_p, 0.0f, 1.0f);
  auto draw = [&](int64_t n) {  // one token of order_[0, n) with weights p (n >= 1: the top token always stays)
    DSEEK_CHECK(n >= 1, "sampling: no token left to draw from");
    double total = 0;
    for (int64_t i = 0; i < n; i++) total += probs_[size_t(order_[size_t(i)])];
    double u = rng_.uniform() * total;
    for (int64_t i = 0; i < n; i++) {
      u -= probs_[size_t(order_[size_t(i)])];
      if (u < 0) return order_[size_t(i)];
    }
    return order_[size_t(n - 1)];
  };
  const bool top_k = p_.top_k > 0 && p_.top_k < V, top_p = p_.top_p < 1.0f;

  // Neither top-k nor top-p: no order is needed, only the min-p cut.
  if (!top_k && !top_p) {
    order_.clear();
    for (int64_t i = 0; i < V; i++)
      if (probs_[size_t(i)] >= min_p_cut) order_.push_back(int32_t(i));
    return draw(int64_t(order_.size()));
  }

  // Otherwise the kept tokens are a head of the vocabulary sorted by logit. keep_head(n, z, complete) applies
  // min-p and the nucleus (mass normalised by z) to the sorted candidates order_[0, n); -1 if the nucleus did not
  // close and tokens outside the candidates could still belong to it.
  auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  auto keep_head = [&](int64_t n, double z, bool complete) -> int64_t {
    while (n > 1 && probs_[size_t(order_[size_t(n - 1)])] < min_p_cut) n--;
    if (!top_p) return n;
    double cum = 0;
    for (int64_t keep = 1; keep <= n; keep++)
      if ((cum += probs_[size_t(order_[size_t(keep - 1)])] / z) >= p_.top_p) return keep;
    return complete ? n : -1;
  };
  if (top_k) {
    order_.resize(static_cast<size_t>(V));
    std::iota(order_.begin(), order_.end(), 0);
    std::partial_sort(order_.begin(), order_.begin() + p_.top_k, order_.end(), by_logit);
    order_.resize(static_cast<size_t>(p_.top_k));
    double z = 0;  // the nucleus is taken within the top k
    for (int32_t i : order_) z += probs_[size_t(i)];
    return draw(keep_head(p_.top_k, z, true));
  }
  // Top-p alone: sort only the tokens with p_i >= tau, lowering tau until the nucleus closes. Tokens below tau are
  // below every candidate, so the sorted candidates are the head of the fully sorted vocabulary; once tau is at
  // most the min-p cut (or 0), no token that could be kept is left out.
  double z = 0;
  for (int64_t i = 0; i < V; i++) z += probs_[size_t(i)];
  for (float tau = 1.0f / 1024;; tau /= 64) {
    if (tau < 1e-30f) tau = 0;
    order_.clear();
    for (int64_t i = 0; i < V; i++)
      if (probs_[size_t(i)] >= tau) order_.push_back(int32_t(i));
    std::sort(order_.begin(), order_.end(), by_logit);
    const int64_t n = keep_head(int64_t(order_.size()), z, tau <= min_p_cut);
    if (n >= 0) return draw(n);
  }
}

void Sampler::probabilities(float* logits, int64_t V, const std::vector<int32_t>& context, std::vector<float>& p) {
  prepare(logits, V, context);
  p.assign(static_cast<size_t>(V), 0.0f);
  if (p_.temperature <= 0.0f) {
    p[size_t(std::max_element(logits, logits + V) - logits)] = 1.0f;
    return;
  }
  // the same weights, order and cuts as sample(), over the whole vocabulary sorted by logit
  const float mx = *std::max_element(logits, logits + V);
  const float inv_t = 1.0f / p_.temperature;
  std::vector<float> w(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; i++) w[size_t(i)] = std::exp((logits[i] - mx) * inv_t);
  const float min_p_cut = std::clamp(p_.min_p, 0.0f, 1.0f);
  const bool top_k = p_.top_k > 0 && p_.top_k < V, top_p = p_.top_p < 1.0f;
  std::vector<int32_t> keep;
  if (!top_k && !top_p) {
    for (int64_t i = 0; i < V; i++)
      if (w[size_t(i)] >= min_p_cut) keep.push_back(int32_t(i));
  } else {
    std::vector<int32_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
    int64_t n = top_k ? p_.top_k : V;
    double z = 0;
    for (int64_t i = 0; i < n; i++) z += w[size_t(order[size_t(i)])];
    while (n > 1 && w[size_t(order[size_t(n - 1)])] < min_p_cut) n--;
    if (top_p) {
      double cum = 0;
      for (int64_t k = 1; k <= n; k++)
        if ((cum += w[size_t(order[size_t(k - 1)])] / z) >= p_.top_p) {
          n = k;
          break;
        }
    }
    keep.assign(order.begin(), order.begin() + n);
  }
  double total = 0;
  for (int32_t i : keep) total += w[size_t(i)];
  for (int32_t i : keep) p[size_t(i)] = float(w[size_t(i)] / total);
}

}  // namespace dseek
