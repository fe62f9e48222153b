// Chat formats: renders conversations exactly (byte for byte) as Hugging Face's apply_chat_template renders
// the chat_template of tokenizer_config.json (jinja2 with trim_blocks and lstrip_blocks, tojson =
// json.dumps(ensure_ascii=False)), for the templates built in here:
//   deepseek-v3          DeepSeek-V3
//   deepseek-r1          DeepSeek-R1 (drops "...</think>" from earlier assistant turns, prompt opens <think>)
//   deepseek-r1-distill  DeepSeek-R1-Distill-Qwen / -Llama: R1 whose system prompt is the last system message
//   qwen2.5              Qwen2.5 Instruct: ChatML with tools, tool calls, tool results, a default system prompt
//   llama-3.1            Llama 3.1 Instruct: date header, tools in the first user message, ipython role
//   qwen3                Qwen3: Qwen2.5's ChatML with reasoning (<think>) kept only after the last query
//   llama-3              Llama 3 Instruct (the original): headers and <|eot_id|>, always ends with the prompt
// A template is recognised from its text; any other template is refused with an error naming the
// --chat-template flag (which picks a built-in format by name) rather than rendered differently.
//
// Messages are nlohmann::ordered_json so that objects written with tojson (tools, tool-call arguments) keep
// their keys in the order given, as Python does; a nlohmann::json converts to it (with sorted keys).
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dseek {

// chat_template of DeepSeek-V3's tokenizer_config.json (also written by `dseek tokenizer train`).
extern const char* const kDeepSeekV3ChatTemplate;

// One stretch of a rendered conversation. `assistant` marks text the model generates in an assistant turn
// (its content and the end-of-turn token that closes it, tool calls); the rest is prompt.
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
    DeepSeekR1Distill,        // the R1-Distill models: R1 with the last system message as system prompt
    Qwen25,      // Qwen2.5 Instruct (ChatML)
    Llama31,     // Llama 3.1 Instruct
    Qwen3,       // Qwen3
    Llama3,      // Llama 3 Instruct
    Unknown,     // a template this renderer does not know: rendering fails naming it
  };

  ChatFormat() = default;
  // `chat_template` as in tokenizer_config.json (a JSON string, a list of {name, template}, or null).
  static ChatFormat from_config(const nlohmann::json& chat_template, std::string bos_token, std::string eos_token,
                                std::string where);
  // A built-in format by its name (see above; what --chat-template takes). An unknown name is an error that
  // names the --chat-template flag and lists the names.
  static ChatFormat from_name(const std::string& name, std::string bos_token, std::string eos_token);
  // The names from_name() takes, comma-separated.
  static std::string names();

  Kind kind() const { return kind_; }
  // The format's name ("" for None and Unknown).
  std::string name() const;
  // The generation prompt opens a reasoning block (R1, R1-Distill): generated text starts inside <think>.
  bool prompt_opens_reasoning() const { return kind_ == Kind::DeepSeekR1 || kind_ == Kind::DeepSeekR1Distill; }

  // `messages`: [{role, content, tool_calls?}] as transformers takes them; `tools`: null (none given) or
  // the list of tool schemas (transformers' `tools`). Throws dseek::Error for an unknown template, a
  // malformed message (naming messages[i] and the field), or where the template itself raises.
  std::vector<ChatSpan> render_spans(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                     const nlohmann::ordered_json& tools = nullptr) const;
  std::string render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                     const nlohmann::ordered_json& tools = nullptr) const;

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
