#include "tokenizer/chat_format.h"

#include "core/error.h"

namespace dseek {

using nlohmann::json;

namespace {
std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

// R1's template is V3's with these two edits: earlier assistant turns lose everything up to "</think>", and
// the generation prompt opens a reasoning block.
const char* const kV3AssistantTurn = "{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}";
const char* const kR1AssistantTurn =
    "{% set content = message['content'] %}{% if '</think>' in content %}{% set content = "
    "content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}";
const char* const kV3GenerationPrompt = "{{'<｜Assistant｜>'}}{% endif %}";
const char* const kR1GenerationPrompt = "{{'<｜Assistant｜><think>\n'}}{% endif %}";

// Templates are published with newlines inside their string literals either raw or as the Jinja escape
// "\n"; both render the same, so they are compared with the escapes resolved.
std::string resolve_newline_escapes(std::string t) {
  for (size_t at = t.find("\\n"); at != std::string::npos; at = t.find("\\n", at)) t.replace(at, 2, "\n");
  return t;
}

ChatFormat::Kind recognize(const std::string& raw) {
  const std::string t = resolve_newline_escapes(raw);
  static const std::string v3 = kDeepSeekV3ChatTemplate;
  static const std::string r1_early = replace_once(v3, kV3AssistantTurn, kR1AssistantTurn);
  static const std::string r1 = replace_once(r1_early, kV3GenerationPrompt, kR1GenerationPrompt);
  if (t == v3) return ChatFormat::Kind::DeepSeekV3;
  if (t == r1) return ChatFormat::Kind::DeepSeekR1;
  if (t == r1_early) return ChatFormat::Kind::DeepSeekR1NoThinkPrompt;
  return ChatFormat::Kind::Unknown;
}

const std::string& text_field(const json& m, const char* name, const std::string& where) {
  if (!m.contains(name)) fail("{}: missing '{}'", where, name);
  if (!m[name].is_string()) fail("{}.{}: expected a string, got {}", where, name, m[name].type_name());
  return m[name].get_ref<const std::string&>();
}
}  // namespace

ChatFormat ChatFormat::from_config(const json& chat_template, std::string bos, std::string eos, std::string where) {
  ChatFormat f;
  f.bos_ = std::move(bos);
  f.eos_ = std::move(eos);
  f.where_ = std::move(where);
  if (chat_template.is_null()) return f;
  std::string text;
  if (chat_template.is_string()) {
    text = chat_template.get<std::string>();
  } else if (chat_template.is_array()) {  // [{name, template}]: the "default" one
    for (const json& t : chat_template)
      if (t.is_object() && t.value("name", "") == "default" && t.contains("template") && t["template"].is_string())
        text = t["template"].get<std::string>();
    if (text.empty()) fail("{}: chat_template has no template named 'default'", f.where_);
  } else {
    fail("{}: chat_template: expected a string", f.where_);
  }
  f.kind_ = recognize(text);
  return f;
}

// The rules of the template, in its own order. Irregularities kept on purpose (they are what the template
// renders): the first tool call of the whole conversation is not followed by "<｜tool▁calls▁end｜>
// <｜end▁of▁sentence｜>", every later call is; is_first and is_output_first are never reset, so a second tool
// round renders differently; an assistant turn with content ignores its tool_calls; no generation prompt
// follows a trailing tool message.
std::vector<ChatSpan> ChatFormat::render_spans(const json& messages, bool add_generation_prompt) const {
  if (kind_ == Kind::None) fail("{}: has no chat_template", where_);
  if (kind_ == Kind::Unknown)
    fail("{}: unsupported chat_template (only DeepSeek-V3's and DeepSeek-R1's are rendered)", where_);
  if (!messages.is_array()) fail("messages: expected an array of {{role, content}} objects");
  const bool r1 = kind_ == Kind::DeepSeekR1 || kind_ == Kind::DeepSeekR1NoThinkPrompt;

  std::vector<ChatSpan> spans;
  auto prompt = [&](std::string s) { spans.push_back({std::move(s), false}); };
  auto generated = [&](std::string s) { spans.push_back({std::move(s), true}); };

  std::string system_prompt;
  bool first_system = true;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) fail("{}: expected an object", where);
    if (m.contains("role") && m["role"] == "system") {
      if (!first_system) system_prompt += "\n\n";
      system_prompt += text_field(m, "content", where);
      first_system = false;
    }
  }
  prompt(bos_ + system_prompt);

  bool is_first = false, is_tool = false, is_output_first = true;
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    std::string where = fmt::format("messages[{}]", i);
    std::string role = text_field(m, "role", where);
    bool content_none = !m.contains("content") ? false : m["content"].is_null();
    if (role == "user") {
      is_tool = false;
      prompt("<｜User｜>" + text_field(m, "content", where));
    }
    if (role == "assistant" && content_none) {
      is_tool = false;
      const json& calls = m.contains("tool_calls") ? m["tool_calls"] : json::array();
      if (!calls.is_array() && !calls.is_null()) fail("{}.tool_calls: expected an array", where);
      for (size_t k = 0; calls.is_array() && k < calls.size(); ++k) {
        const json& call = calls[k];
        std::string at = fmt::format("{}.tool_calls[{}]", where, k);
        if (!call.is_object() || !call.contains("function") || !call["function"].is_object())
          fail("{}: expected {{type, function: {{name, arguments}}}}", at);
        std::string body = text_field(call, "type", at) + "<｜tool▁sep｜>" +
                           text_field(call["function"], "name", at + ".function") + "\n```json\n" +
                           text_field(call["function"], "arguments", at + ".function") + "\n```<｜tool▁call▁end｜>";
        if (!is_first) {
          prompt("<｜Assistant｜>");
          generated("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>" + body);
          is_first = true;
        } else {
          generated("\n<｜tool▁call▁begin｜>" + body + "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>");
        }
      }
    }
    if (role == "assistant" && !content_none) {
      std::string content = text_field(m, "content", where);
      if (is_tool) {
        prompt("<｜tool▁outputs▁end｜>");
        generated(content + "<｜end▁of▁sentence｜>");
        is_tool = false;
      } else {
        if (r1) {
          size_t close = content.rfind("</think>");
          if (close != std::string::npos) content = content.substr(close + 8);
        }
        prompt("<｜Assistant｜>");
        generated(content + "<｜end▁of▁sentence｜>");
      }
    }
    if (role == "tool") {
      is_tool = true;
      const std::string& content = text_field(m, "content", where);
      if (is_output_first) {
        prompt("<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>" + content + "<｜tool▁output▁end｜>");
        is_output_first = false;
      } else {
        prompt("\n<｜tool▁output▁begin｜>" + content + "<｜tool▁output▁end｜>");
      }
    }
  }
  if (is_tool) prompt("<｜tool▁outputs▁end｜>");
  if (add_generation_prompt && !is_tool) prompt(kind_ == Kind::DeepSeekR1 ? "<｜Assistant｜><think>\n" : "<｜Assistant｜>");

  // Merge neighbours of the same kind and drop empty spans.
  std::vector<ChatSpan> out;
  for (ChatSpan& s : spans) {
    if (s.text.empty()) continue;
    if (!out.empty() && out.back().assistant == s.assistant) {
      out.back().text += s.text;
    } else {
      out.push_back(std::move(s));
    }
  }
  return out;
}

std::string ChatFormat::render(const json& messages, bool add_generation_prompt) const {
  std::string out;
  for (const ChatSpan& s : render_spans(messages, add_generation_prompt)) out += s.text;
  return out;
}

namespace {
std::string trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}
}  // namespace

ReasoningSplit split_reasoning(const std::string& text, bool opened) {
  std::string_view t = text;
  size_t lead = t.find_first_not_of(" \t\r\n");
  bool tagged = lead != std::string_view::npos && t.substr(lead, 7) == "<think>";
  if (tagged) t = t.substr(lead + 7);
  size_t close = t.find("</think>");
  if (close != std::string_view::npos) return {trim(t.substr(0, close)), trim(t.substr(close + 8))};
  if (tagged || opened) return {trim(t), ""};
  return {"", trim(t)};
}

}  // namespace dseek
