// `dseek serve`: an OpenAI-compatible HTTP server (cpp-httplib) in front of the continuous-batching engine.
//
//   POST /v1/chat/completions, POST /v1/completions   (stream or not; errors in OpenAI's format)
//   GET  /v1/models, GET /health (503 while loading or shutting down), GET /metrics (Prometheus text)
//
// The HTTP threads parse and check requests, tokenize, and wait for their CompletionStream; the engine runs on a
// thread of its own. The socket is bound before the model loads (so /health answers 503 meanwhile); "listening"
// is printed once requests can be served. SIGTERM or SIGINT: new requests get 503, running ones finish, then
// the process exits 0 (a second signal stops at once).
#pragma once
#include <cstdint>
#include <string>

namespace dseek::serve {

struct ServerOptions {
  std::string model;                // model folder or training run
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0: any free port (printed)
  std::string served_name;          // the model id clients use; default: the folder's name
  std::string api_key;              // empty: no authentication
  std::string chat_template;        // built-in chat format by name (empty: the tokenizer's)
  int parallel = 16;                // sequences decoded together
  int64_t ctx_size = 0;             // 0: the model's max_position_embeddings
  int64_t max_queue = 64;           // waiting requests beyond the running ones; more get 429
  int64_t kv_cache_mib = 2048;
  int64_t prefix_cache_mib = 512;   // 0: off
  int64_t step_tokens = 256;        // prompt tokens prefilled per engine step
  int64_t max_body_bytes = 8 << 20;
  int http_threads = 0;             // 0: parallel + max_queue + 8
};

// Serves until SIGTERM / SIGINT; returns the exit code.
int run_server(const ServerOptions& opt);

}  // namespace dseek::serve
