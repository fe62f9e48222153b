#include "serve/server.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>

#include "core/error.h"
#include "core/model_folder.h"
#include "inference/engine.h"
#include "inference/generation_config.h"
#include "inference/json_constraint.h"
#include "model/model.h"
#include "serve/api_error.h"
#include "serve/completion_stream.h"
#include "serve/openai_request.h"
#include "tokenizer/tokenizer.h"

namespace dseek::serve {

namespace {
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

enum Phase { kLoading = 0, kReady = 1, kDraining = 2 };

// response_format json_object: the engine's view of the JSON constraint.
class JsonObjectConstraint : public TokenConstraint {
 public:
  explicit JsonObjectConstraint(const JsonConstraint& start) : c_(start) {}
  void mask(float* logits, int64_t vocab, int64_t remaining) const override { c_.mask(logits, vocab, remaining); }
  void accept(int32_t token) override { c_.accept(token); }

 private:
  JsonConstraint c_;
};

struct State {
  ServerOptions opt;
  std::string name;
  std::atomic<int> phase{kLoading};
  std::unique_ptr<Model> model;
  std::unique_ptr<Forward> fwd;
  std::unique_ptr<Engine> engine;
  std::optional<Tokenizer> tok;
  std::optional<JsonConstraint> json_start;  // json_object: built once from every token's bytes, copied per choice
  std::vector<int32_t> stop_ids;
  GenerationDefaults defaults;
  int64_t ctx = 0;
  int64_t created = 0;
  std::atomic<int64_t> active{0};  // completion responses not finished
  std::mutex mu;                   // guards responses
  std::map<int, int64_t> responses;  // by HTTP status
  std::mt19937_64 seeds{std::random_device{}()};
};

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(error_json(e).dump(), "application/json");
}

std::string random_hex(State& st) {
  std::lock_guard lock(st.mu);
  return fmt::format("{:016x}", st.seeds());
}

void check_ready(State& st) {
  const int p = st.phase.load();
  if (p == kLoading) throw ApiError(503, "the model is still loading; retry when GET /health answers 200", "", "", "server_error");
  if (p == kDraining) throw ApiError(503, "the server is shutting down", "", "", "server_error");
}

void check_auth(const State& st, const httplib::Request& req) {
  if (st.opt.api_key.empty()) return;
  const std::string h = req.get_header_value("Authorization");
  if (h != "Bearer " + st.opt.api_key)
    throw ApiError(401, h.empty() ? "You didn't provide an API key: send it as 'Authorization: Bearer KEY'"
                                  : "Incorrect API key provided", "", "invalid_api_key");
}

void completions(State& st, const httplib::Request& req, httplib::Response& res, bool chat) {
  check_auth(st, req);
  check_ready(st);
  const CompletionRequest r = parse_completion_request(req.body, chat);
  if (!r.model.empty() && r.model != st.name)
    throw ApiError(404, fmt::format("The model `{}` does not exist (this server serves `{}`)", r.model, st.name), "model",
                   "model_not_found");
  const Tokenizer& tok = *st.tok;
  const ModelConfig& c = st.model->config;
  std::vector<int32_t> prompt;
  bool opened = false;
  if (chat) {
    try {
      prompt = tok.encode_chat(r.messages, true, r.tools).ids;
    } catch (const Error& e) {
      bad_field("messages", e.what());
    }
    opened = tok.chat_format().prompt_opens_reasoning();
  } else if (!r.prompt_ids.empty()) {
    prompt = r.prompt_ids;
    for (size_t i = 0; i < prompt.size(); i++)
      if (prompt[i] >= c.vocab_size)
        bad_field("prompt", fmt::format("'prompt[{}]' = {} is outside the vocabulary ({} tokens)", i, prompt[i], c.vocab_size));
  } else {
    try {
      prompt = tok.encode(*r.prompt, true);
    } catch (const Error& e) {
      bad_field("prompt", e.what());
    }
    if (prompt.empty()) {
      if (c.bos_token_id < 0) bad_field("prompt", "the prompt is empty and the model has no BOS token to start from");
      prompt.push_back(int32_t(c.bos_token_id));
    }
  }
  const int64_t P = int64_t(prompt.size());
  if (P >= st.ctx)
    bad_field(chat ? "messages" : "prompt",
              fmt::format("This model's maximum context length is {} tokens, and the prompt has {} tokens: nothing can "
                          "be generated", st.ctx, P), "context_length_exceeded");
  const int64_t max_tokens = r.max_tokens.value_or(st.ctx - P);
  if (P + max_tokens > st.ctx)
    bad_field(r.max_tokens ? "max_tokens" : "messages",
              fmt::format("This model's maximum context length is {} tokens. However, you requested {} tokens ({} in "
                          "the prompt, {} for the completion). Reduce the prompt or max_tokens.",
                          st.ctx, P + max_tokens, P, max_tokens), "context_length_exceeded");

  EngineRequest er;
  er.prompt = std::move(prompt);
  er.n = r.n;
  er.max_tokens = max_tokens;
  er.sampling = st.defaults.sampling;
  if (r.temperature) er.sampling.temperature = *r.temperature;
  if (r.top_p) er.sampling.top_p = *r.top_p;
  if (r.top_k) er.sampling.top_k = *r.top_k;
  if (r.min_p) er.sampling.min_p = *r.min_p;
  if (r.repetition_penalty) er.sampling.repetition_penalty = *r.repetition_penalty;
  {
    std::lock_guard lock(st.mu);
    er.sampling.seed = r.seed ? *r.seed : st.seeds();
  }
  er.frequency_penalty = r.frequency_penalty;
  er.presence_penalty = r.presence_penalty;
  if (!r.ignore_eos) er.stop_ids = st.stop_ids;
  er.logprobs = r.logprobs;
  if (r.json_object) {
    const JsonConstraint* start = &*st.json_start;
    er.constraint = [start] { return std::make_unique<JsonObjectConstraint>(*start); };
  }
  if (const std::string why = st.engine->check_fits(P, max_tokens, r.n); !why.empty())
    bad_field(r.n > 1 ? "n" : "max_tokens", why);

  CompletionMeta meta;
  meta.id = (chat ? "chatcmpl-" : "cmpl-") + random_hex(st);
  meta.model = st.name;
  meta.created = int64_t(std::time(nullptr));
  meta.chat = chat;
  meta.stream = r.stream;
  meta.include_usage = r.include_usage;
  meta.n = r.n;
  meta.logprobs = r.logprobs;
  meta.reasoning_opened = opened;
  meta.stop = r.stop;
  auto cs = std::make_shared<CompletionStream>(tok, meta);
  er.on_token = [cs](int ch, const EngineToken& t) { return cs->on_token(ch, t); };
  er.on_finish = [cs](int ch, const std::string& why) { cs->on_finish(ch, why); };
  er.on_done = [cs](const EngineUsage& u, const std::string& err) { cs->on_done(u, err); };
  const uint64_t id = st.engine->submit(std::move(er));
  if (id == 0)
    throw ApiError(429, fmt::format("The server is busy ({} requests waiting, --max-queue); retry later", st.opt.max_queue),
                   "", "rate_limit_exceeded", "rate_limit_error");
  cs->engine_id = id;
  st.active++;
  State* sp = &st;
  if (r.stream) {
    res.set_header("Cache-Control", "no-cache");
    res.set_header("X-Accel-Buffering", "no");
  }
  // The body is written as it comes. A client that went away makes a write fail: its request is cancelled at once.
  // While nothing is ready a heartbeat is written (every 2 s an SSE comment; every 250 ms a space before a JSON
  // body), which is what notices a client that left while its whole response is being generated or prefilled.
  auto last = std::make_shared<Clock::time_point>(Clock::now());
  const bool stream = r.stream;
  res.set_chunked_content_provider(
      stream ? "text/event-stream" : "application/json",
      [cs, last, stream](size_t, httplib::DataSink& sink) {
        bool finished = false;
        const std::string s = cs->take(250, finished);
        if (!s.empty()) {
          if (!sink.write(s.data(), s.size())) return false;
          *last = Clock::now();
        } else if (!finished && Clock::now() - *last > (stream ? std::chrono::milliseconds(2000) : std::chrono::milliseconds(250))) {
          const std::string beat = stream ? ": keep-alive\n\n" : " ";
          if (!sink.write(beat.data(), beat.size())) return false;
          *last = Clock::now();
        }
        if (finished) sink.done();
        return true;
      },
      [cs, sp](bool) {
        if (!cs->is_finished()) {
          sp->engine->cancel(cs->engine_id);  // first: the engine then reports "cancelled", not "stop"
          cs->client_gone();
        }
        sp->active--;
      });
}

std::string metrics_text(State& st) {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, const std::string& value,
                    const std::string& labels = "") {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{}{} {}\n", name, help, name, type, name, labels, value);
  };
  if (!st.engine) {
    metric("dseek_ready", "gauge", "1 once the model is loaded", "0");
    return out;
  }
  const EngineStats s = st.engine->stats();
  metric("dseek_ready", "gauge", "1 once the model is loaded", st.phase == kReady ? "1" : "0");
  metric("dseek_requests_submitted_total", "counter", "Requests accepted into the queue", std::to_string(s.requests_submitted));
  metric("dseek_requests_finished_total", "counter", "Requests finished (all choices)", std::to_string(s.requests_finished));
  metric("dseek_requests_cancelled_total", "counter", "Requests cancelled (client gone)", std::to_string(s.requests_cancelled));
  metric("dseek_requests_rejected_total", "counter", "Requests refused with 429 (queue full)", std::to_string(s.requests_rejected));
  {
    std::lock_guard lock(st.mu);
    out += "# HELP dseek_http_responses_total HTTP responses by status\n# TYPE dseek_http_responses_total counter\n";
    for (auto [code, n] : st.responses) out += fmt::format("dseek_http_responses_total{{status=\"{}\"}} {}\n", code, n);
  }
  metric("dseek_prompt_tokens_total", "counter", "Prompt tokens of accepted requests", std::to_string(s.prompt_tokens));
  metric("dseek_prefill_tokens_total", "counter", "Prompt tokens computed (not served from the prefix cache)", std::to_string(s.prefilled_tokens));
  metric("dseek_generation_tokens_total", "counter", "Generated tokens", std::to_string(s.generated_tokens));
  metric("dseek_generation_tokens_per_second", "gauge", "Generated tokens per second over the last 10 s",
         fmt::format("{:.2f}", s.recent_tokens_per_second));
  metric("dseek_engine_steps_total", "counter", "Engine steps (forward passes)", std::to_string(s.steps));
  metric("dseek_engine_busy_seconds_total", "counter", "Time spent in engine steps", fmt::format("{:.3f}", s.busy_seconds));
  metric("dseek_requests_waiting", "gauge", "Requests in the queue", std::to_string(s.waiting));
  metric("dseek_sequences_running", "gauge", "Sequences (choices) in the running batch", std::to_string(s.running));
  metric("dseek_kv_cache_bytes", "gauge", "KV cache memory reserved by running sequences", std::to_string(s.kv_bytes_used));
  metric("dseek_kv_cache_usage_ratio", "gauge", "Reserved KV cache over --kv-cache-mib",
         fmt::format("{:.4f}", s.kv_bytes_limit > 0 ? double(s.kv_bytes_used) / double(s.kv_bytes_limit) : 0.0));
  metric("dseek_prefix_cache_hit_tokens_total", "counter", "Prompt tokens served from the prefix cache", std::to_string(s.cached_tokens));
  metric("dseek_prefix_cache_lookups_total", "counter", "Prefix cache lookups", std::to_string(s.prefix.lookups));
  metric("dseek_prefix_cache_blocks", "gauge", "Blocks in the prefix cache", std::to_string(s.prefix.blocks));
  metric("dseek_prefix_cache_bytes", "gauge", "Bytes in the prefix cache", std::to_string(s.prefix.bytes));
  metric("dseek_prefix_cache_evicted_blocks_total", "counter", "Prefix cache blocks evicted (LRU)", std::to_string(s.prefix.evicted_blocks));
  return out;
}

void load(State& st) {
  const ServerOptions& o = st.opt;
  const std::string dir = resolve_model_dir(o.model);
  const auto tok_file = Tokenizer::find_file(o.model);
  if (!tok_file) fail("--model {}: no tokenizer.json in {} (the server needs one to read and write text)", o.model, dir);
  st.tok = Tokenizer::load(*tok_file, {.chat_template = o.chat_template});
  st.defaults = GenerationDefaults::load(dir);
  st.model = std::make_unique<Model>(Model::load(o.model));
  const ModelConfig& c = st.model->config;
  st.ctx = o.ctx_size > 0 ? std::min(o.ctx_size, c.max_position_embeddings) : c.max_position_embeddings;
  for (int64_t e : c.eos_token_ids) st.stop_ids.push_back(int32_t(e));
  if (st.tok->eos_id() >= 0 && std::find(st.stop_ids.begin(), st.stop_ids.end(), st.tok->eos_id()) == st.stop_ids.end())
    st.stop_ids.push_back(st.tok->eos_id());
  auto bytes = std::make_shared<std::vector<std::string>>(size_t(c.vocab_size));
  for (int32_t id = 0; id < int32_t(std::min<size_t>(size_t(c.vocab_size), st.tok->vocab_size())); id++)
    if (!st.tok->is_special(id)) (*bytes)[size_t(id)] = token_bytes(*st.tok, id);
  st.json_start.emplace(bytes, st.stop_ids);
  st.fwd = std::make_unique<Forward>(*st.model);
  EngineOptions eo;
  eo.parallel = o.parallel;
  eo.step_tokens = o.step_tokens;
  eo.max_queue = o.max_queue;
  eo.kv_cache_bytes = o.kv_cache_mib << 20;
  eo.prefix_cache_bytes = o.prefix_cache_mib << 20;
  st.engine = std::make_unique<Engine>(*st.fwd, eo);
  st.engine->start();
}

void routes(httplib::Server& svr, State& st) {
  auto guarded = [&st](auto fn) {
    return [&st, fn](const httplib::Request& req, httplib::Response& res) {
      try {
        fn(req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const std::bad_alloc&) {
        send_error(res, ApiError(500, "out of memory", "", "", "server_error"));
      } catch (const std::exception& e) {
        send_error(res, ApiError(500, e.what(), "", "", "server_error"));
      }
    };
  };
  svr.Post("/v1/chat/completions", guarded([&st](const httplib::Request& q, httplib::Response& r) { completions(st, q, r, true); }));
  svr.Post("/v1/completions", guarded([&st](const httplib::Request& q, httplib::Response& r) { completions(st, q, r, false); }));
  svr.Get("/v1/models", guarded([&st](const httplib::Request& q, httplib::Response& r) {
    check_auth(st, q);
    json model = {{"id", st.name}, {"object", "model"}, {"created", st.created}, {"owned_by", "dseek"}};
    if (st.phase != kLoading) model["max_model_len"] = st.ctx;
    r.set_content(json{{"object", "list"}, {"data", json::array({model})}}.dump(), "application/json");
  }));
  svr.Get("/health", [&st](const httplib::Request&, httplib::Response& r) {
    const int p = st.phase.load();
    r.status = p == kReady ? 200 : 503;
    r.set_content(json{{"status", p == kReady ? "ok" : p == kLoading ? "loading" : "shutting down"}}.dump(), "application/json");
  });
  svr.Get("/metrics", [&st](const httplib::Request&, httplib::Response& r) {
    r.set_content(metrics_text(st), "text/plain; version=0.0.4");
  });
  // errors httplib answers itself (unknown route, body too large, malformed HTTP) in OpenAI's format
  svr.set_error_handler([&st](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    std::string msg = res.status == 404   ? fmt::format("no route {} {}", req.method, req.path)
                      : res.status == 413 ? fmt::format("the request body is larger than the server's limit of {} bytes (--max-body-bytes)", st.opt.max_body_bytes)
                                          : fmt::format("HTTP {}", res.status);
    res.set_content(error_json(msg, "invalid_request_error", "", res.status == 404 ? "not_found" : "").dump(), "application/json");
  });
  svr.set_logger([&st](const httplib::Request&, const httplib::Response& res) {
    std::lock_guard lock(st.mu);
    st.responses[res.status]++;
  });
}
}  // namespace

int run_server(const ServerOptions& opt) {
  // SIGTERM and SIGINT are taken by one thread (sigtimedwait) in every thread started from here on
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto st = std::make_shared<State>();
  st->opt = opt;
  st->name = !opt.served_name.empty() ? opt.served_name
                                      : std::filesystem::path(opt.model).lexically_normal().filename().string();
  if (st->name.empty() || st->name == ".") st->name = std::filesystem::path(opt.model).lexically_normal().parent_path().filename().string();
  st->created = int64_t(std::time(nullptr));

  httplib::Server svr;
  const int threads = opt.http_threads > 0 ? opt.http_threads : int(opt.parallel + opt.max_queue + 8);
  svr.new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  svr.set_payload_max_length(size_t(opt.max_body_bytes));
  // SO_REUSEADDR only: httplib's default SO_REUSEPORT let a second server bind a port already in use and share its
  // connections instead of failing with an error
  svr.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  svr.set_tcp_nodelay(true);  // each SSE chunk leaves at once (Nagle + delayed ACK held chunks ~40 ms)
  // httplib closes a keep-alive connection after 5 requests by default, racing a client that sends its next request
  // at that moment. Connections stay open for many requests instead.
  svr.set_keep_alive_max_count(100000);
  svr.set_keep_alive_timeout(5);  // also how long an idle keep-alive connection delays the exit
  routes(svr, *st);
  int port = opt.port;
  if (port == 0) {
    port = svr.bind_to_any_port(opt.host);
    if (port < 0) fail("--host {}: cannot listen there", opt.host);
  } else if (!svr.bind_to_port(opt.host, port)) {
    fail("--port {}: cannot listen on {}:{} (in use, or not an address of this machine)", port, opt.host, port);
  }
  std::atomic<bool> listen_returned{false};
  std::thread http([&svr, &listen_returned] {
    svr.listen_after_bind();
    listen_returned = true;
  });
  // svr.stop() before the accept loop has started would be lost (and the loop would then wait forever): stop, on
  // a load error or a signal, only once it runs
  while (!svr.is_running() && !listen_returned) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  // SIGTERM/SIGINT: new requests get 503, and the server stops once the running ones are done (polled here, so
  // no thread outlives this function); a second signal stops it at once.
  std::atomic<bool> quit{false};
  std::thread signals([&] {
    const timespec tick{0, 50'000'000};
    int received = 0;
    while (!quit) {
      const int sig = sigtimedwait(&sigs, nullptr, &tick);
      if (sig > 0 && ++received == 1) {
        std::fprintf(stderr, "dseek serve: %s: finishing %lld running request(s), then exiting (again: stop now)\n",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT", (long long)st->active.load());
        st->phase = kDraining;
      }
      const bool drained = received > 0 && st->active == 0 && (!st->engine || st->engine->idle());
      if (received > 1 || drained) {
        svr.stop();
        return;
      }
    }
  });

  try {
    std::fprintf(stderr, "dseek serve: loading %s\n", opt.model.c_str());
    load(*st);
  } catch (...) {
    quit = true;
    svr.stop();
    http.join();
    signals.join();
    throw;
  }
  st->phase = kReady;
  const ModelConfig& c = st->model->config;
  std::printf("dseek serve: listening on http://%s:%d/v1 (model %s: %s, context %lld, %d parallel, prefix cache %lld MiB%s)\n",
              opt.host.c_str(), port, st->name.c_str(), architecture_model_type(c.arch), (long long)st->ctx, opt.parallel,
              (long long)opt.prefix_cache_mib, opt.api_key.empty() ? "" : ", API key required");
  std::fflush(stdout);
  http.join();
  quit = true;
  signals.join();
  st->engine->stop();
  std::fprintf(stderr, "dseek serve: stopped\n");
  return 0;
}

}  // namespace dseek::serve
