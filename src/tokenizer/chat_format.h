// DeepSeek chat format: renders conversations exactly as the chat_template of DeepSeek-V3's (or R1's)
// tokenizer_config.json renders them, including the template's irregularities (see the comments in
// chat_format.cpp). Other templates are refused with a clear error rather than rendered differently.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dseek {

// chat_template of DeepSeek-V3's tokenizer_config.json (also written by `dseek tokenizer train`).
extern const char* const kDeepSeekV3ChatTemplate;

// One stretch of a rendered conversation. `assistant` marks text the model generates in an assistant turn
// (its content and the end-of-sentence that closes it, tool calls); the rest is prompt.
struct ChatSpan {
  std::string text;
  bool assistant = false;
};

class ChatFormat {
 public:
  enum class Kind {
    None,        // no chat_template: rendering fails
    DeepSeekV3,  // DeepSeek-V3
    DeepSeekR1,  // DeepSeek-R1: drops "...</think>" from earlier assistant turns, prompt ends "<think>\n"
    DeepSeekR1NoThinkPrompt,  // the first R1 release: like R1 without the "<think>\n" generation prompt
    Unknown,     // a template this renderer does not know: rendering fails naming it
  };

  ChatFormat() = default;
  // `chat_template` as in tokenizer_config.json (a JSON string, a list of {name, template}, or null).
  static ChatFormat from_config(const nlohmann::json& chat_template, std::string bos_token, std::string eos_token,
                                std::string where);

  Kind kind() const { return kind_; }
  // The generation prompt opens a reasoning block (R1): generated text starts inside <think>.
  bool prompt_opens_reasoning() const { return kind_ == Kind::DeepSeekR1; }

  // `messages`: [{role, content, tool_calls?}] as transformers takes them. Throws dseek::Error for an unknown
  // template or a malformed message (naming messages[i] and the field).
  std::vector<ChatSpan> render_spans(const nlohmann::json& messages, bool add_generation_prompt) const;
  std::string render(const nlohmann::json& messages, bool add_generation_prompt) const;

 private:
  Kind kind_ = Kind::None;
  std::string bos_, eos_, where_;
};

// R1-style reasoning: "<think>reasoning</think>answer". `opened` says the prompt already opened the block
// (R1's generation prompt ends with "<think>\n"), so text before "</think>" is reasoning even without
// "<think>". Without "</think>", text is all reasoning when the block is open, else all answer. Both parts
// are trimmed of surrounding whitespace.
struct ReasoningSplit {
  std::string reasoning, answer;
};
ReasoningSplit split_reasoning(const std::string& text, bool opened = false);

}  // namespace dseek
