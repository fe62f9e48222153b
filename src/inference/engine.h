// The serving engine: continuous batching over the latent KV cache. Requests join and leave the running batch at
// every step; one step is one forward pass over a mix of prompt chunks (prefill, at most `step_tokens` prompt
// tokens per step, so long prompts do not stall the decoding requests) and one token of every decoding sequence,
// so the weight products are shared by everything that runs.
//
//   submit() -> waiting queue (bounded: full means "try later", HTTP 429)
//   admit    -> a slot per choice and the KV memory of prompt + max_tokens reserved up front (so a running
//               sequence never has to be preempted); the longest cached prefix copied in (prefix_cache.h)
//   step     -> prefill chunks + decode tokens in one Forward::run; sample where a row's logits are final
//   finish   -> stop id, max_tokens, the caller's on_token returning false (stop string, client gone), cancel()
//
// The n choices of a request prefill their prompt once: the other choices wait, then copy the first one's cache
// and logits and sample from them with their own seeds (choice 0: the request's seed; choice i: a hash of it and i). Callbacks run on the engine thread.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "inference/forward.h"
#include "inference/generator.h"
#include "inference/prefix_cache.h"
#include "inference/sampler.h"

namespace dseek {

// Restricts the tokens a choice may sample (e.g. to JSON); one object per choice.
class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Sets the logits of forbidden tokens to -infinity; `remaining`: tokens the choice may still generate.
  virtual void mask(float* logits, int64_t vocab, int64_t remaining) const = 0;
  virtual void accept(int32_t token) = 0;
};

struct TokenLogprob {
  int32_t token;
  float logprob;
};

struct EngineToken {
  int32_t id = 0;
  bool is_stop_id = false;        // one of the request's stop ids (EOS): it ends the choice
  float logprob = 0;              // log p(id) of the model's distribution (before penalties and temperature)
  std::vector<TokenLogprob> top;  // the `logprobs` most likely tokens, most likely first
};

struct EngineUsage {
  int64_t prompt_tokens = 0, cached_tokens = 0, completion_tokens = 0;
};

struct EngineRequest {
  std::vector<int32_t> prompt;
  int n = 1;                      // choices (choice 0 samples with the seed, choice i with a hash of seed and i)
  SamplingParams sampling;
  std::vector<SamplingParams> choice_sampling;  // if given (n of them): choice i samples with these, seed included
  float frequency_penalty = 0, presence_penalty = 0;  // OpenAI's, on the tokens generated so far
  int64_t max_tokens = 16;        // per choice; prompt + max_tokens must fit the context (the caller checks)
  std::vector<int32_t> stop_ids;  // end a choice (EOS)
  int logprobs = -1;              // -1: none; k >= 0: the chosen token's log-probability and the k most likely
  std::function<std::unique_ptr<TokenConstraint>()> constraint;  // null: free sampling
  // on_token(choice, token): false ends the choice with "stop" (a stop string matched) or, once cancel() was
  // called, "cancelled". on_finish(choice, reason): "stop" | "length" | "cancelled" | "error". on_done(usage,
  // error): once, after every choice finished; error is empty unless the engine failed.
  std::function<bool(int, const EngineToken&)> on_token;
  std::function<void(int, const std::string&)> on_finish;
  std::function<void(const EngineUsage&, const std::string&)> on_done;
};

struct EngineOptions {
  int parallel = 16;                  // sequences (choices) decoded together
  int64_t step_tokens = 256;          // prompt tokens prefilled per step, over all sequences
  int64_t max_queue = 64;             // waiting requests; beyond that submit() refuses
  int64_t kv_cache_bytes = 2ll << 30; // KV memory of the running sequences
  int64_t prefix_cache_bytes = 512ll << 20;  // 0: no prefix cache
  int64_t prefix_block = 32;          // tokens per prefix-cache block
};

struct EngineStats {
  int64_t requests_submitted = 0, requests_finished = 0, requests_rejected = 0, requests_cancelled = 0;
  int64_t prompt_tokens = 0, prefilled_tokens = 0, cached_tokens = 0, generated_tokens = 0, steps = 0;
  int64_t waiting = 0, running = 0;
  int64_t kv_bytes_used = 0, kv_bytes_limit = 0;
  double busy_seconds = 0;            // time spent in steps
  double recent_tokens_per_second = 0;  // generated tokens per second over the last ~10 s
  PrefixCacheStats prefix;
};

class Engine {
 public:
  Engine(Forward& fwd, EngineOptions opt);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Why a request cannot run at all (empty if it can): KV memory of n x (prompt + max_tokens) tokens beyond the
  // whole budget, or more choices than slots.
  std::string check_fits(int64_t prompt_tokens, int64_t max_tokens, int n) const;
  // Queues a request; 0 when the queue is full. Throws dseek::Error when check_fits() refuses it.
  uint64_t submit(EngineRequest r);
  // Ends a request (queued or running) at the next step; its on_finish says "cancelled".
  void cancel(uint64_t id);

  void start();         // runs steps on a thread of its own
  void stop();          // the thread finishes the current step and exits; unfinished requests stay
  // Without start(): one step on the calling thread (false when there was nothing to do), or steps until nothing
  // is queued or running.
  bool step();
  void run_until_idle();
  bool idle() const;
  EngineStats stats() const;
  const Forward& forward() const { return fwd_; }

 private:
  struct Request;
  struct Seq;
  void admit();
  void sample(Seq& s, const float* logits);
  void finish(Seq& s, const std::string& reason);
  void fail_all(const std::string& error);

  Forward& fwd_;
  EngineOptions opt_;
  int64_t vocab_;
  int64_t kv_token_bytes_;  // KV cache bytes of one token (every layer)
  PrefixCache prefix_;
  // engine thread only
  std::vector<std::unique_ptr<Seq>> running_;
  std::vector<float> logits_;                     // [chunks, vocab] of a step
  std::vector<float> sample_logits_, sample_raw_;  // [vocab] one draw's logits, and before penalties (logprobs)
  int64_t step_sampled_ = 0;                      // tokens sampled in the current step (forked choices included)

  mutable std::mutex mu_;  // guards waiting_, live_, stats_, stop_
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Request>> waiting_;
  std::unordered_map<uint64_t, std::weak_ptr<Request>> live_;  // submitted, not finished: for cancel()
  EngineStats stats_;
  std::deque<std::pair<double, int64_t>> recent_;  // (time, generated tokens) per step, last ~10 s
  uint64_t next_id_ = 1;
  bool stop_ = false;
  std::thread thread_;
};

// OpenAI's frequency and presence penalties: logit[t] -= frequency * count(t) + presence * (count(t) > 0) over
// the generated tokens.
void apply_frequency_presence(float* logits, int64_t vocab, const std::vector<int32_t>& generated, float frequency,
                              float presence);
// The chosen token's log-probability and the k most likely tokens (log-softmax of `logits`).
EngineToken token_logprobs(const float* logits, int64_t vocab, int32_t chosen, int k);

}  // namespace dseek
