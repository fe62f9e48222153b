#include "cli/commands.h"
#include "serve/server.h"

namespace dseek::cli {

void add_serve(CLI::App& app) {
  auto o = std::make_shared<serve::ServerOptions>();
  auto threads = std::make_shared<int>(0);
  CLI::App* sub = app.add_subcommand("serve", "OpenAI-compatible HTTP server (chat and text completions, streaming) "
                                              "with continuous batching and a prefix cache");
  sub->add_option("--model", o->model, "Model folder or training run (with tokenizer.json)")->required();
  sub->add_option("--host", o->host, "Address to listen on")->default_val("127.0.0.1");
  sub->add_option("--port", o->port, "Port (0: any free port, printed)")->default_val(8080)->check(CLI::Range(0, 65535));
  sub->add_option("--served-model-name", o->served_name, "Model id clients send and /v1/models lists (default: the folder's name)");
  sub->add_option("--api-key", o->api_key, "Require 'Authorization: Bearer KEY' on /v1/ requests");
  add_chat_template_flag(*sub, o->chat_template);
  sub->add_option("--parallel", o->parallel, "Sequences decoded together (the running batch; a request with n choices takes n)")
      ->default_val(16)->check(CLI::Range(1, 4096));
  sub->add_option("--ctx-size", o->ctx_size, "Context per request, prompt + completion (0: the model's max_position_embeddings)")
      ->default_val(0)->check(CLI::NonNegativeNumber);
  sub->add_option("--max-queue", o->max_queue, "Requests that may wait for a slot; beyond that the answer is 429")
      ->default_val(64)->check(CLI::NonNegativeNumber);
  sub->add_option("--kv-cache-mib", o->kv_cache_mib, "KV cache memory for the running sequences (each reserves prompt + max_tokens)")
      ->default_val(2048)->check(CLI::PositiveNumber);
  sub->add_option("--prefix-cache-mib", o->prefix_cache_mib, "Memory for reusing earlier prompts' KV (0: off)")
      ->default_val(512)->check(CLI::NonNegativeNumber);
  sub->add_option("--step-tokens", o->step_tokens, "Prompt tokens prefilled per engine step, shared with the decoding sequences")
      ->default_val(256)->check(CLI::PositiveNumber);
  sub->add_option("--max-body-bytes", o->max_body_bytes, "Largest request body (413 beyond)")->default_val(8 << 20)->check(CLI::PositiveNumber);
  sub->add_option("--http-threads", o->http_threads, "Connection threads (0: parallel + max-queue + 8)")->default_val(0)->check(CLI::NonNegativeNumber);
  add_threads_flag(*sub, *threads);
  sub->footer(
      "Endpoints: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health, GET /metrics.\n"
      "Prints a line with 'listening' when ready; SIGTERM/SIGINT finish the running requests, then exit.\n"
      "Example: curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \\\n"
      "           -d '{\"messages\": [{\"role\": \"user\", \"content\": \"Hello\"}], \"max_tokens\": 32}'");
  sub->callback([o, threads] {
    apply_threads(*threads);
    serve::run_server(*o);
  });
}

}  // namespace dseek::cli
