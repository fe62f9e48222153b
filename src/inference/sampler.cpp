#include "inference/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <unordered_set>

namespace dseek {

float log_softmax_at(const float* logits, int64_t vocab, int32_t token) {
  float mx = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; i++) sum += std::exp(double(logits[i] - mx));
  return float(double(logits[token] - mx) - std::log(sum));
}

int32_t Sampler::sample(float* logits, int64_t V, const std::vector<int32_t>& context) {
  if (p_.repetition_penalty != 1.0f) {
    std::unordered_set<int32_t> seen(context.begin(), context.end());
    for (int32_t t : seen) {
      if (t < 0 || t >= V) continue;
      logits[t] = logits[t] > 0 ? logits[t] / p_.repetition_penalty : logits[t] * p_.repetition_penalty;
    }
  }
  if (p_.temperature <= 0.0f) return int32_t(std::max_element(logits, logits + V) - logits);

  // candidates sorted by logit (only as many as the filters need)
  order_.resize(static_cast<size_t>(V));
  std::iota(order_.begin(), order_.end(), 0);
  int64_t n = V;
  if (p_.top_k > 0 && p_.top_k < V) {
    std::partial_sort(order_.begin(), order_.begin() + p_.top_k, order_.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    n = p_.top_k;
  } else {
    std::sort(order_.begin(), order_.end(),
              [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  }
  probs_.resize(static_cast<size_t>(n));
  const float mx = logits[order_[0]];
  double sum = 0;
  for (int64_t i = 0; i < n; i++) sum += (probs_[size_t(i)] = std::exp((logits[order_[size_t(i)]] - mx) / p_.temperature));
  for (int64_t i = 0; i < n; i++) probs_[size_t(i)] = float(probs_[size_t(i)] / sum);
  if (p_.min_p > 0.0f) {
    const float thr = p_.min_p * probs_[0];
    int64_t keep = 1;
    while (keep < n && probs_[size_t(keep)] >= thr) keep++;
    n = keep;
  }
  if (p_.top_p < 1.0f) {
    double cum = 0;
    int64_t keep = 0;
    while (keep < n) {
      cum += probs_[size_t(keep)];
      keep++;
      if (cum >= p_.top_p) break;
    }
    n = keep;
  }
  double total = 0;
  for (int64_t i = 0; i < n; i++) total += probs_[size_t(i)];
  double u = rng_.uniform() * total;
  for (int64_t i = 0; i < n; i++) {
    u -= probs_[size_t(i)];
    if (u < 0) return order_[size_t(i)];
  }
  return order_[size_t(n - 1)];
}

}  // namespace dseek
