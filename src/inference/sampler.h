// Next-token sampling: repetition penalty, temperature, top-k, top-p (nucleus), min-p; greedy at temperature 0.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/rng.h"

namespace dseek {

struct SamplingParams {
  float temperature = 1.0f;        // 0: greedy
  int64_t top_k = 0;               // 0: off
  float top_p = 1.0f;              // 1: off
  float min_p = 0.0f;              // 0: off; keeps tokens with p >= min_p * p_max
  float repetition_penalty = 1.0f; // 1: off; CTRL-style on logits of tokens seen in the context
  uint64_t seed = 0;
};

// Checks every parameter's range; an out-of-range one is an error "<named(param)> must be <range>, got <value>",
// where `named` turns the parameter ("top_p") into how the caller's user knows it ("sampling: top_p", "--top-p:").
void check_sampling_params(const SamplingParams& p, const std::function<std::string(std::string_view)>& named);

class Sampler {
 public:
  // Out-of-range parameters (NaN or negative temperature, top_p outside (0, 1], negative or NaN min_p, negative
  // top_k, non-positive repetition penalty) are an error naming the parameter.
  explicit Sampler(SamplingParams p);
  // logits [vocab] are modified in place; `context` holds the ids seen so far (prompt and generated). Logits of
  // -infinity are tokens masked out; NaN or +infinity (a diverged or corrupted model) are an error, never a token.
  int32_t sample(float* logits, int64_t vocab, const std::vector<int32_t>& context);
  // The distribution sample() draws from, [vocab] summing to 1 (after the repetition penalty, temperature, top-k,
  // top-p and min-p; one-hot on the argmax at temperature 0); logits are modified as sample() modifies them.
  // Speculative decoding needs it for the draft and the target.
  void probabilities(float* logits, int64_t vocab, const std::vector<int32_t>& context, std::vector<float>& p);
  const SamplingParams& params() const { return p_; }
  Rng& rng() { return rng_; }

 private:
  SamplingParams p_;
  Rng rng_;
  void prepare(float* logits, int64_t vocab, const std::vector<int32_t>& context);  // checks, repetition penalty
  std::vector<int32_t> order_;
  std::vector<float> probs_;
};

// log sum_i exp(logits[i]): log-probabilities are logits[t] minus it.
double log_sum_exp(const float* logits, int64_t vocab);

}  // namespace dseek
