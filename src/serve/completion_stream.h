// One completion request as it flows from the engine thread to the HTTP thread that answers it. The engine's
// callbacks turn tokens into text (incremental UTF-8 decoding, stop strings, R1 reasoning split) and either queue
// Server-Sent Events (stream: true) or build the final JSON; the HTTP thread waits for them and writes them out.
//
// Streamed chunks follow OpenAI's order: per choice a first delta with the role, text deltas (reasoning as
// `reasoning_content`, the rest as `content`), a chunk with `finish_reason`; then, with include_usage, a chunk
// with empty `choices` and the usage; then `data: [DONE]`. One id for every chunk.
#pragma once
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "inference/engine.h"
#include "serve/openai_request.h"
#include "tokenizer/text_stream.h"
#include "tokenizer/tokenizer.h"

namespace dseek::serve {

struct CompletionMeta {
  std::string id, model;
  int64_t created = 0;
  bool chat = false, stream = false, include_usage = false;
  int n = 1;
  int logprobs = -1;
  bool reasoning_opened = false;  // the prompt opened a <think> block (R1)
  std::vector<std::string> stop;
};

class CompletionStream {
 public:
  CompletionStream(const Tokenizer& tok, CompletionMeta meta);

  // Engine callbacks (engine thread).
  bool on_token(int choice, const EngineToken& t);
  void on_finish(int choice, const std::string& reason);
  void on_done(const EngineUsage& usage, const std::string& error);

  // HTTP side: waits up to `timeout_ms` for output; returns the bytes to send (may be empty) and sets `finished`
  // once everything was taken.
  std::string take(int timeout_ms, bool& finished);
  void client_gone() { gone_ = true; }
  bool is_finished();
  uint64_t engine_id = 0;

 private:
  struct Choice {
    std::unique_ptr<StreamDecoder> decoder;
    StopStrings stops;
    ReasoningStream reasoning;
    std::string content, reasoning_text;
    nlohmann::json logprobs;        // chat: content array; completions: {tokens, token_logprobs, top_logprobs, text_offset}
    std::string finish_reason;
    size_t text_offset = 0;
    Choice(const Tokenizer& tok, std::vector<std::string> stop, bool opened)
        : decoder(std::make_unique<StreamDecoder>(tok, true)), stops(std::move(stop)), reasoning(opened) {}
  };
  // Engine thread, mu_ held: text that passed the stop strings (split into reasoning and answer for chat), or
  // parts already split; logprobs: the token's entry or null.
  void emit_text(int choice, const std::string& visible, nlohmann::json logprobs);
  void emit_parts(int choice, const std::vector<ReasoningStream::Part>& parts, nlohmann::json logprobs);
  void send(const nlohmann::json& chunk);  // mu_ held
  nlohmann::json chunk_base() const;
  nlohmann::json logprob_entry(const EngineToken& t) const;

  const Tokenizer& tok_;
  CompletionMeta meta_;
  std::vector<Choice> choices_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string out_;
  bool finished_ = false;
  std::atomic<bool> gone_{false};
};

// The raw bytes of a token (byte-level BPE pieces mapped back to bytes; added tokens as their text).
std::string token_bytes(const Tokenizer& tok, int32_t id);
// OpenAI's usage object.
nlohmann::json usage_json(const EngineUsage& u);

}  // namespace dseek::serve
