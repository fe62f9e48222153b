// The body of POST /v1/chat/completions and /v1/completions, parsed and checked field by field: a malformed
// body, a field of the wrong type or out of its range is an ApiError 400 naming the field (`param`), never a
// crash. Fields the server does not use are ignored, as vLLM does.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace dseek::serve {

struct CompletionRequest {
  bool chat = false;
  std::string model;                     // empty: not given
  nlohmann::ordered_json messages;       // chat: [{role, content}], content flattened to a string
  nlohmann::ordered_json tools;          // chat: null or the tool schemas (rendered by the chat template)
  std::optional<std::string> prompt;     // completions: text
  std::vector<int32_t> prompt_ids;       // completions: token ids
  std::optional<int64_t> max_tokens;     // max_completion_tokens or max_tokens
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int64_t> top_k;          // -1 and 0: off
  float frequency_penalty = 0, presence_penalty = 0;
  std::vector<std::string> stop;
  std::optional<uint64_t> seed;
  int n = 1;
  int logprobs = -1;                     // -1: none; else how many most likely tokens per position
  bool stream = false, include_usage = false;
  bool json_object = false;              // response_format {"type": "json_object"}
  bool ignore_eos = false;               // vLLM's extension: generate max_tokens whatever the model says (benchmarks)
};

// Throws ApiError (400) for a body that is not a JSON object or a field that is wrong.
CompletionRequest parse_completion_request(const std::string& body, bool chat);

}  // namespace dseek::serve
