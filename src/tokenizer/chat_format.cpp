#include "tokenizer/chat_format.h"

#include "core/error.h"
#include "tokenizer/chat_render.h"

namespace dseek {

using nlohmann::json;

namespace {
std::string replace_once(std::string s, const std::string& from, const std::string& to) {
  size_t at = s.find(from);
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

// R1's template is V3's with these two edits: earlier assistant turns lose everything up to "</think>", and
// the generation prompt opens a reasoning block. The R1-Distill template is R1's whose system prompt is the
// last system message instead of all of them joined.
const char* const kV3AssistantTurn = "{{'<｜Assistant｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}";
const char* const kR1AssistantTurn =
    "{% set content = message['content'] %}{% if '</think>' in content %}{% set content = "
    "content.split('</think>')[-1] %}{% endif %}{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}";
const char* const kV3GenerationPrompt = "{{'<｜Assistant｜>'}}{% endif %}";
const char* const kR1GenerationPrompt = "{{'<｜Assistant｜><think>\n'}}{% endif %}";
const char* const kV3SystemPrompt =
    "system_prompt='', is_first_sp=true) %}{%- for message in messages %}{%- if message['role'] == 'system' %}"
    "{%- if ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt + message['content'] %}"
    "{% set ns.is_first_sp = false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '\n\n' + "
    "message['content'] %}{%- endif %}{%- endif %}";
const char* const kDistillSystemPrompt =
    "system_prompt='') %}{%- for message in messages %}{%- if message['role'] == 'system' %}"
    "{% set ns.system_prompt = message['content'] %}{%- endif %}";

// Templates are published with newlines inside their string literals either raw or as the Jinja escape
// "\n", and with or without a final newline (which jinja2 drops); all of these render the same, so they are
// compared with the escapes resolved and one final newline removed.
std::string normalize_template(const std::string& t) {
  std::string out;
  out.reserve(t.size());
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '\\' && i + 1 < t.size() && t[i + 1] == 'n') {
      out += '\n';
      ++i;
    } else {
      out += t[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

struct Known {
  const char* name;
  ChatFormat::Kind kind;
};
constexpr Known kKnown[] = {
    {"deepseek-v3", ChatFormat::Kind::DeepSeekV3},
    {"deepseek-r1", ChatFormat::Kind::DeepSeekR1},
    {"deepseek-r1-distill", ChatFormat::Kind::DeepSeekR1Distill},
    {"deepseek-r1-no-think-prompt", ChatFormat::Kind::DeepSeekR1NoThinkPrompt},
    {"qwen2.5", ChatFormat::Kind::Qwen25},
    {"llama-3.1", ChatFormat::Kind::Llama31},
    {"qwen3", ChatFormat::Kind::Qwen3},
    {"llama-3", ChatFormat::Kind::Llama3},
};

ChatFormat::Kind recognize(const std::string& raw) {
  const std::string t = normalize_template(raw);
  static const std::string v3 = normalize_template(kDeepSeekV3ChatTemplate);
  static const std::string r1_early = replace_once(v3, kV3AssistantTurn, kR1AssistantTurn);
  static const std::string r1 = replace_once(r1_early, kV3GenerationPrompt, kR1GenerationPrompt);
  static const std::string distill = replace_once(r1, kV3SystemPrompt, kDistillSystemPrompt);
  if (t == v3) return ChatFormat::Kind::DeepSeekV3;
  if (t == r1) return ChatFormat::Kind::DeepSeekR1;
  if (t == r1_early) return ChatFormat::Kind::DeepSeekR1NoThinkPrompt;
  if (t == distill) return ChatFormat::Kind::DeepSeekR1Distill;
  // The other families by length and FNV-1a hash of the normalized text: the chat_template of
  // Qwen2.5-7B-Instruct, Llama-3.1-8B-Instruct (the same in the other sizes of each family), Qwen3 and
  // Llama-3-Instruct.
  const uint64_t h = fnv1a64(t);
  if (t.size() == 2474 && h == 0x11d394755cef9355ull) return ChatFormat::Kind::Qwen25;
  if (t.size() == 4583 && h == 0x4fd30286bc0da17cull) return ChatFormat::Kind::Llama31;
  if (t.size() == 4071 && h == 0xabb815b933a4981aull) return ChatFormat::Kind::Qwen3;
  if (t.size() == 348 && h == 0x74891e390e614ae2ull) return ChatFormat::Kind::Llama3;
  return ChatFormat::Kind::Unknown;
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

ChatFormat ChatFormat::from_name(const std::string& name, std::string bos, std::string eos) {
  for (const Known& k : kKnown) {
    if (name != k.name) continue;
    ChatFormat f;
    f.kind_ = k.kind;
    f.bos_ = std::move(bos);
    f.eos_ = std::move(eos);
    f.where_ = "--chat-template " + name;
    return f;
  }
  fail("--chat-template {}: unknown chat template (built-in: {})", name, names());
}

std::string ChatFormat::names() {
  std::string out;
  for (const Known& k : kKnown) out += std::string(out.empty() ? "" : ", ") + k.name;
  return out;
}

std::string ChatFormat::name() const {
  for (const Known& k : kKnown)
    if (k.kind == kind_) return k.name;
  return {};
}

std::vector<ChatSpan> ChatFormat::render_spans(const chat::Json& messages, bool add_generation_prompt,
                                               const chat::Json& tools) const {
  if (kind_ == Kind::None)
    fail("{}: has no chat_template (choose a built-in one with --chat-template NAME: {})", where_, names());
  if (kind_ == Kind::Unknown)
    fail("{}: unsupported chat_template (built-in: {}; choose one with --chat-template NAME)", where_, names());
  if (!messages.is_array()) fail("messages: expected an array of {{role, content}} objects");
  if (!tools.is_null() && !tools.is_array()) fail("tools: expected an array of tool schemas or null");
  switch (kind_) {
    case Kind::Qwen25:
      return chat::render_qwen25(messages, add_generation_prompt, tools);
    case Kind::Llama31:
      return chat::render_llama31(messages, add_generation_prompt, tools, bos_);
    case Kind::Qwen3:
      return chat::render_qwen3(messages, add_generation_prompt, tools);
    case Kind::Llama3:
      return chat::render_llama3(messages, bos_);
    default:
      return chat::render_deepseek(kind_, messages, add_generation_prompt, bos_);
  }
}

std::string ChatFormat::render(const chat::Json& messages, bool add_generation_prompt, const chat::Json& tools) const {
  std::string out;
  for (const ChatSpan& s : render_spans(messages, add_generation_prompt, tools)) out += s.text;
  return out;
}

namespace chat {

std::vector<ChatSpan> SpanWriter::finish() {
  std::vector<ChatSpan> out;
  for (ChatSpan& s : spans_) {
    if (s.text.empty()) continue;
    if (!out.empty() && out.back().assistant == s.assistant) {
      out.back().text += s.text;
    } else {
      out.push_back(std::move(s));
    }
  }
  spans_.clear();
  return out;
}

const std::string& text_field(const Json& m, const char* name, const std::string& where) {
  if (!m.contains(name)) fail("{}: missing '{}'", where, name);
  if (!m[name].is_string()) fail("{}.{}: expected a string, got {}", where, name, m[name].type_name());
  return m[name].get_ref<const std::string&>();
}

const Json& message_at(const Json& messages, size_t i, std::string& where) {
  where = fmt::format("messages[{}]", i);
  const Json& m = messages[i];
  if (!m.is_object()) fail("{}: expected an object", where);
  return m;
}

// The rules of DeepSeek's templates, in their own order. Irregularities kept on purpose (they are what the
// template renders): the first tool call of the whole conversation is not followed by "<｜tool▁calls▁end｜>
// <｜end▁of▁sentence｜>", every later call is; is_first and is_output_first are never reset, so a second tool
// round renders differently; an assistant turn with content ignores its tool_calls; no generation prompt
// follows a trailing tool message.
std::vector<ChatSpan> render_deepseek(ChatFormat::Kind kind, const Json& messages, bool add_generation_prompt,
                                      const std::string& bos) {
  using Kind = ChatFormat::Kind;
  const bool r1 = kind == Kind::DeepSeekR1 || kind == Kind::DeepSeekR1NoThinkPrompt || kind == Kind::DeepSeekR1Distill;
  SpanWriter out;
  std::string where, system_prompt;
  bool first_system = true;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = message_at(messages, i, where);
    if (m.contains("role") && m["role"] == "system") {
      if (kind == Kind::DeepSeekR1Distill) {  // the last system message alone
        system_prompt = text_field(m, "content", where);
        continue;
      }
      if (!first_system) system_prompt += "\n\n";
      system_prompt += text_field(m, "content", where);
      first_system = false;
    }
  }
  out.prompt(bos + system_prompt);

  bool is_first = false, is_tool = false, is_output_first = true;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = message_at(messages, i, where);
    std::string role = text_field(m, "role", where);
    bool content_none = !m.contains("content") ? false : m["content"].is_null();
    if (role == "user") {
      is_tool = false;
      out.prompt("<｜User｜>" + text_field(m, "content", where));
    }
    if (role == "assistant" && content_none) {
      is_tool = false;
      const Json& calls = m.contains("tool_calls") ? m["tool_calls"] : Json::array();
      if (!calls.is_array() && !calls.is_null()) fail("{}.tool_calls: expected an array", where);
      for (size_t k = 0; calls.is_array() && k < calls.size(); ++k) {
        const Json& call = calls[k];
        std::string at = fmt::format("{}.tool_calls[{}]", where, k);
        if (!call.is_object() || !call.contains("function") || !call["function"].is_object())
          fail("{}: expected {{type, function: {{name, arguments}}}}", at);
        std::string body = text_field(call, "type", at) + "<｜tool▁sep｜>" +
                           text_field(call["function"], "name", at + ".function") + "\n```json\n" +
                           text_field(call["function"], "arguments", at + ".function") + "\n```<｜tool▁call▁end｜>";
        if (!is_first) {
          out.prompt("<｜Assistant｜>");
          out.generated("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>" + body);
          is_first = true;
        } else {
          out.generated("\n<｜tool▁call▁begin｜>" + body + "<｜tool▁calls▁end｜><｜end▁of▁sentence｜>");
        }
      }
    }
    if (role == "assistant" && !content_none) {
      std::string content = text_field(m, "content", where);
      if (is_tool) {
        out.prompt("<｜tool▁outputs▁end｜>");
        out.generated(content + "<｜end▁of▁sentence｜>");
        is_tool = false;
      } else {
        if (r1) {
          size_t close = content.rfind("</think>");
          if (close != std::string::npos) content = content.substr(close + 8);
        }
        out.prompt("<｜Assistant｜>");
        out.generated(content + "<｜end▁of▁sentence｜>");
      }
    }
    if (role == "tool") {
      is_tool = true;
      const std::string& content = text_field(m, "content", where);
      if (is_output_first) {
        out.prompt("<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>" + content + "<｜tool▁output▁end｜>");
        is_output_first = false;
      } else {
        out.prompt("\n<｜tool▁output▁begin｜>" + content + "<｜tool▁output▁end｜>");
      }
    }
  }
  if (is_tool) out.prompt("<｜tool▁outputs▁end｜>");
  if (add_generation_prompt && !is_tool)
    out.prompt(kind == Kind::DeepSeekR1 || kind == Kind::DeepSeekR1Distill ? "<｜Assistant｜><think>\n" : "<｜Assistant｜>");
  return out.finish();
}

}  // namespace chat

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
