// Internals of the chat formats (chat_format.h): span building, message field access, the Python semantics
// the templates rely on (json.dumps, str.strip), and the renderer of each template family.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/chat_format.h"

namespace dseek::chat {

using Json = nlohmann::ordered_json;

// Collects prompt and generated stretches; finish() merges neighbours of the same kind and drops empty ones.
class SpanWriter {
 public:
  void prompt(std::string s) { spans_.push_back({std::move(s), false}); }
  void generated(std::string s) { spans_.push_back({std::move(s), true}); }
  std::vector<ChatSpan> finish();

 private:
  std::vector<ChatSpan> spans_;
};

// m[name] as a string; fails naming `where` when it is missing or not a string.
const std::string& text_field(const Json& m, const char* name, const std::string& where);
// messages[i] checked to be an object; `where` receives "messages[i]".
const Json& message_at(const Json& messages, size_t i, std::string& where);

// Python's json.dumps(v, ensure_ascii=False[, indent=indent]): ", " and ": " separators without indent,
// "," and ": " with it; keys in their order; floats as Python's repr writes them.
std::string py_json_dumps(const Json& v, int indent = -1);
// Python's str.strip() with no argument (what Jinja's trim filter does): strips characters that are
// Unicode White_Space or U+001C..U+001F.
std::string py_strip(std::string_view s);

// The renderers, one per template family.
std::vector<ChatSpan> render_deepseek(ChatFormat::Kind kind, const Json& messages, bool add_generation_prompt,
                                      const std::string& bos);
std::vector<ChatSpan> render_qwen25(const Json& messages, bool add_generation_prompt, const Json& tools);
std::vector<ChatSpan> render_qwen3(const Json& messages, bool add_generation_prompt, const Json& tools);
std::vector<ChatSpan> render_llama3(const Json& messages, const std::string& bos);
std::vector<ChatSpan> render_llama31(const Json& messages, bool add_generation_prompt, const Json& tools,
                                     const std::string& bos);

}  // namespace dseek::chat
