// Request bodies of the OpenAI-compatible server (chat and text completions): any bytes. ApiError (a 400 naming
// the field) is the expected outcome of bad input; crashes, UB and other exceptions are not. The same bytes also
// drive the JSON-object recogniser of response_format json_object, whose closing() must complete any prefix it
// accepted.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "inference/json_constraint.h"
#include "serve/api_error.h"
#include "serve/openai_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  for (bool chat : {true, false}) {
    try {
      (void)dseek::serve::parse_completion_request(body, chat);
    } catch (const dseek::serve::ApiError& e) {
      if (e.status != 400) __builtin_trap();
    }
  }
  dseek::JsonPrefix p;
  std::string accepted;
  for (size_t i = 0; i < size; i++)
    if (p.push(data[i])) accepted.push_back(char(data[i]));
  const std::string done = accepted + p.closing();
  if (done.size() != accepted.size() + p.closing_length()) __builtin_trap();
  if (!nlohmann::json::accept(done)) __builtin_trap();
  return 0;
}
