#include "inference/engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <unordered_map>

#include "core/error.h"
#include "core/rng.h"

namespace dseek {

namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void apply_frequency_presence(float* logits, int64_t vocab, const std::vector<int32_t>& generated, float frequency,
                              float presence) {
  if (frequency == 0 && presence == 0) return;
  std::unordered_map<int32_t, int> count;
  for (int32_t t : generated) count[t]++;
  for (auto [t, c] : count)
    if (t >= 0 && t < vocab) logits[t] -= frequency * float(c) + presence;
}

EngineToken token_logprobs(const float* logits, int64_t V, int32_t chosen, int k) {
  const double lse = log_sum_exp(logits, V);
  EngineToken t;
  t.id = chosen;
  t.logprob = float(double(logits[chosen]) - lse);
  if (k > 0) {
    k = int(std::min<int64_t>(k, V));
    std::vector<int32_t> order(static_cast<size_t>(V));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (int i = 0; i < k; i++) t.top.push_back({order[size_t(i)], float(double(logits[order[size_t(i)]]) - lse)});
  }
  return t;
}

struct Engine::Request {
  uint64_t id = 0;
  EngineRequest r;
  int64_t budget = 0;     // tokens per choice
  int open_choices = 0;   // choices not finished yet
  std::atomic<bool> cancelled{false};  // set by cancel() from any thread
  std::string error;
  EngineUsage usage;
};

struct Engine::Seq {
  std::shared_ptr<Request> req;
  int choice = 0;
  enum class Phase { Prefill, Decode, WaitFork } phase = Phase::Prefill;
  KVCache cache;
  std::vector<int32_t> context;    // prompt + generated
  std::vector<int32_t> generated;
  int64_t prefilled = 0;           // prompt tokens in the cache
  int32_t next = 0;                // the token the next decode step feeds
  int64_t kv_bytes = 0;            // reserved
  Sampler sampler;
  std::unique_ptr<TokenConstraint> constraint;
  bool done = false;
  Seq(SamplingParams sp) : sampler(sp) {}
};

Engine::Engine(Forward& fwd, EngineOptions opt)
    : fwd_(fwd),
      opt_(opt),
      vocab_(fwd.model().config.vocab_size),
      kv_token_bytes_(int64_t(fwd.new_cache(1).bytes_per_token())),
      prefix_(opt.prefix_block, opt.prefix_cache_bytes) {
  if (opt_.parallel < 1) fail("engine: parallel must be >= 1, got {}", opt_.parallel);
  if (opt_.step_tokens < 1) fail("engine: step_tokens must be >= 1, got {}", opt_.step_tokens);
  stats_.kv_bytes_limit = opt_.kv_cache_bytes;
}

Engine::~Engine() { stop(); }

std::string Engine::check_fits(int64_t prompt_tokens, int64_t max_tokens, int n) const {
  if (n > opt_.parallel)
    return fmt::format("n = {} choices is more than the server decodes together (--parallel {})", n, opt_.parallel);
  const int64_t need = int64_t(n) * (prompt_tokens + max_tokens) * kv_token_bytes_;
  if (need > opt_.kv_cache_bytes)
    return fmt::format("{} choice(s) of {} prompt + {} completion tokens need {:.1f} MiB of KV cache, more than the "
                       "server's {:.1f} MiB (--kv-cache-mib)", n, prompt_tokens, max_tokens, double(need) / (1 << 20),
                       double(opt_.kv_cache_bytes) / (1 << 20));
  return "";
}

uint64_t Engine::submit(EngineRequest r) {
  if (r.prompt.empty()) fail("engine: empty prompt");
  if (r.n < 1) fail("engine: n must be >= 1, got {}", r.n);
  if (!r.choice_sampling.empty() && int64_t(r.choice_sampling.size()) != r.n)
    fail("engine: {} choice_sampling entries for n = {}", r.choice_sampling.size(), r.n);
  for (int32_t t : r.prompt)
    if (t < 0 || t >= vocab_) fail("engine: prompt token {} outside the vocabulary ({})", t, vocab_);
  if (const std::string why = check_fits(int64_t(r.prompt.size()), r.max_tokens, r.n); !why.empty()) fail("{}", why);
  auto q = std::make_shared<Request>();
  q->budget = generation_budget(fwd_.model().config, int64_t(r.prompt.size()), r.max_tokens);
  q->open_choices = r.n;
  q->usage.prompt_tokens = int64_t(r.prompt.size());
  q->r = std::move(r);
  std::lock_guard lock(mu_);
  // the queue holds max_queue requests beyond those the free slots take at the next step
  if (int64_t(waiting_.size()) >= opt_.max_queue + std::max<int64_t>(0, opt_.parallel - stats_.running)) {
    stats_.requests_rejected++;
    return 0;
  }
  q->id = next_id_++;
  waiting_.push_back(q);
  live_[q->id] = q;
  stats_.requests_submitted++;
  stats_.prompt_tokens += int64_t(q->r.prompt.size());
  cv_.notify_all();
  return q->id;
}

void Engine::cancel(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = live_.find(id);
  if (it == live_.end()) return;
  if (auto q = it->second.lock()) q->cancelled = true;
  cv_.notify_all();
}

bool Engine::idle() const {
  std::lock_guard lock(mu_);
  return waiting_.empty() && stats_.running == 0;
}

EngineStats Engine::stats() const {
  std::lock_guard lock(mu_);
  EngineStats s = stats_;
  s.waiting = int64_t(waiting_.size());
  return s;
}

void Engine::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard lock(mu_);
    stop_ = false;
  }
  thread_ = std::thread([this] {
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stop_ || !waiting_.empty() || !running_.empty(); });
        if (stop_) return;
      }
      step();
    }
  });
}

void Engine::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void Engine::run_until_idle() {
  for (;;) {
    step();
    std::lock_guard lock(mu_);
    if (waiting_.empty() && running_.empty()) return;
  }
}

void Engine::finish(Seq& s, const std::string& reason) {
  if (s.done) return;
  s.done = true;
  Request& q = *s.req;
  if (q.r.on_finish) q.r.on_finish(s.choice, reason);
  if (--q.open_choices == 0) {
    if (q.r.on_done) q.r.on_done(q.usage, q.error);
    std::lock_guard lock(mu_);
    live_.erase(q.id);
    stats_.requests_finished++;
    if (q.cancelled) stats_.requests_cancelled++;
  }
}

void Engine::admit() {
  // cancelled requests that are still queued end here (running ones in step())
  std::vector<std::shared_ptr<Request>> admitted;
  std::vector<std::shared_ptr<Request>> dropped;
  {
    std::lock_guard lock(mu_);
    for (auto it = waiting_.begin(); it != waiting_.end();)
      if ((*it)->cancelled) {
        dropped.push_back(*it);
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    int64_t slots = opt_.parallel - int64_t(running_.size());
    int64_t kv_free = opt_.kv_cache_bytes - stats_.kv_bytes_used;
    while (!waiting_.empty()) {
      auto& q = waiting_.front();
      const int64_t need = q->r.n * (int64_t(q->r.prompt.size()) + q->budget) * kv_token_bytes_;
      if (q->r.n > slots || need > kv_free) break;  // first come, first served
      slots -= q->r.n;
      kv_free -= need;
      stats_.kv_bytes_used += need;
      admitted.push_back(q);
      waiting_.pop_front();
    }
  }
  for (auto& q : dropped) {
    if (q->r.on_finish)
      for (int c = 0; c < q->r.n; c++) q->r.on_finish(c, "cancelled");
    if (q->r.on_done) q->r.on_done(q->usage, "");
    std::lock_guard lock(mu_);
    live_.erase(q->id);
    stats_.requests_finished++;
    stats_.requests_cancelled++;
  }
  for (auto& q : admitted) {
    const int64_t P = int64_t(q->r.prompt.size());
    for (int c = 0; c < q->r.n; c++) {
      SamplingParams sp = q->r.sampling;
      if (!q->r.choice_sampling.empty()) sp = q->r.choice_sampling[size_t(c)];
      else if (c > 0) sp.seed = hash_index(sp.seed, 0x63686f696365ull, uint64_t(c));  // "choice": independent streams
      auto s = std::make_unique<Seq>(sp);
      s->req = q;
      s->choice = c;
      s->context = q->r.prompt;
      s->kv_bytes = (P + q->budget) * kv_token_bytes_;
      if (q->r.constraint) s->constraint = q->r.constraint();
      if (c == 0) {
        s->cache = fwd_.new_cache(P + q->budget);
        // at least the last prompt token is computed: its logits are the first sample's
        s->prefilled = prefix_.restore(q->r.prompt, P - 1, s->cache);
        q->usage.cached_tokens = s->prefilled;
      } else {
        s->phase = Seq::Phase::WaitFork;
      }
      running_.push_back(std::move(s));
    }
    std::lock_guard lock(mu_);
    stats_.cached_tokens += q->usage.cached_tokens;
  }
  std::lock_guard lock(mu_);
  stats_.running = int64_t(running_.size());
}

void Engine::sample(Seq& s, const float* row) {
  Request& q = *s.req;
  // the row is shared by the choices of a request and the sampler edits it: a copy per draw
  std::vector<float>& l = sample_logits_;
  l.assign(row, row + vocab_);
  if (s.constraint) s.constraint->mask(l.data(), vocab_, q.budget - int64_t(s.generated.size()));
  if (q.r.logprobs >= 0) sample_raw_ = l;  // the model's distribution (restricted to what the constraint allows)
  apply_frequency_presence(l.data(), vocab_, s.generated, q.r.frequency_penalty, q.r.presence_penalty);
  const int32_t id = s.sampler.sample(l.data(), vocab_, s.context);
  if (s.constraint) s.constraint->accept(id);
  step_sampled_++;
  EngineToken t;
  if (q.r.logprobs >= 0) t = token_logprobs(sample_raw_.data(), vocab_, id, q.r.logprobs);
  t.id = id;
  t.is_stop_id = std::find(q.r.stop_ids.begin(), q.r.stop_ids.end(), id) != q.r.stop_ids.end();
  s.generated.push_back(id);
  s.context.push_back(id);
  s.next = id;
  q.usage.completion_tokens++;
  const bool keep = q.r.on_token ? q.r.on_token(s.choice, t) : true;
  if (!keep) {
    finish(s, q.cancelled ? "cancelled" : "stop");
  } else if (t.is_stop_id) {
    finish(s, "stop");
  } else if (int64_t(s.generated.size()) >= q.budget) {
    finish(s, "length");
  } else {
    s.phase = Seq::Phase::Decode;
  }
}

void Engine::fail_all(const std::string& error) {
  for (auto& s : running_) {
    s->req->error = error;
    finish(*s, "error");
  }
}

bool Engine::step() {
  admit();
  // cancelled requests end before the step
  for (auto& s : running_)
    if (s->req->cancelled) finish(*s, "cancelled");
  std::vector<Seq*> rows;
  std::vector<SeqChunk> chunks;
  int64_t prefill_left = opt_.step_tokens;
  step_sampled_ = 0;
  for (auto& s : running_)
    if (!s->done && s->phase == Seq::Phase::Decode) {
      rows.push_back(s.get());
      chunks.push_back({&s->cache, &s->next, 1});
    }
  for (auto& s : running_) {
    if (s->done || s->phase != Seq::Phase::Prefill || prefill_left <= 0) continue;
    const int64_t take = std::min<int64_t>(int64_t(s->req->r.prompt.size()) - s->prefilled, prefill_left);
    rows.push_back(s.get());
    chunks.push_back({&s->cache, s->req->r.prompt.data() + s->prefilled, take});
    prefill_left -= take;
  }
  const double t0 = now_seconds();
  int64_t prefilled = 0;
  if (!chunks.empty()) {
    logits_.resize(chunks.size() * size_t(vocab_));
    try {
      fwd_.run(chunks, false, logits_.data());
      for (size_t k = 0; k < rows.size(); k++) {
        Seq& s = *rows[k];
        const float* row = logits_.data() + k * size_t(vocab_);
        if (s.phase == Seq::Phase::Prefill) {
          s.prefilled += chunks[k].n;
          prefilled += chunks[k].n;
          const int64_t P = int64_t(s.req->r.prompt.size());
          if (s.prefilled < P) continue;
          prefix_.store(s.req->r.prompt, P, s.cache);
          // the other choices of the request start from this cache and these logits
          for (auto& f : running_)
            if (f->req == s.req && f->phase == Seq::Phase::WaitFork) {
              f->cache = s.cache;
              f->cache.reserve(P + s.req->budget);
              f->prefilled = P;
              sample(*f, row);
            }
        }
        sample(s, row);
      }
    } catch (const std::exception& e) {
      fail_all(e.what());
    }
  }
  // finished sequences leave (their KV memory is free for the next admission)
  int64_t freed = 0;
  std::erase_if(running_, [&](const std::unique_ptr<Seq>& s) {
    if (s->done) freed += s->kv_bytes;
    return s->done;
  });
  const double t1 = now_seconds();
  std::lock_guard lock(mu_);
  stats_.kv_bytes_used -= freed;
  stats_.running = int64_t(running_.size());
  if (chunks.empty()) return false;
  stats_.steps++;
  stats_.busy_seconds += t1 - t0;
  stats_.prefilled_tokens += prefilled;
  stats_.generated_tokens += step_sampled_;
  stats_.prefix = prefix_.stats();
  recent_.push_back({t1, step_sampled_});
  while (!recent_.empty() && recent_.front().first < t1 - 10) recent_.pop_front();
  int64_t sum = 0;
  for (auto& [t, n] : recent_) sum += n;
  stats_.recent_tokens_per_second = recent_.size() > 1 ? double(sum) / std::max(1.0, t1 - recent_.front().first) : 0;
  return true;
}

}  // namespace dseek
