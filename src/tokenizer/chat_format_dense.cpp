// The chat templates of the dense families (Qwen2.5 Instruct, Qwen3, Llama 3 and Llama 3.1 Instruct), rendered
// as jinja2 renders them for transformers, and the Python semantics they rely on (json.dumps for tojson,
// str.strip for trim).
#include <charconv>

#include "core/error.h"
#include "tokenizer/chat_render.h"
#include "tokenizer/unicode.h"

namespace dseek::chat {

namespace {

// Python's repr() of a float: the shortest digits that round-trip, fixed notation for exponents -4..15
// (always with a fractional part), otherwise d[.ddd]e+XX.
std::string py_float(double d) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  if (ec != std::errc()) fail("cannot format the number {}", d);
  std::string s(buf, end);  // [-]d[.ddd]e(+|-)XX
  std::string sign;
  if (s[0] == '-') {
    sign = "-";
    s.erase(0, 1);
  }
  size_t e_at = s.find('e');
  int exp = std::stoi(s.substr(e_at + 1));
  std::string digits = s.substr(0, e_at);
  if (digits.size() > 1) digits.erase(1, 1);  // drop the '.'
  if (exp < -4 || exp >= 16) {
    std::string m = digits.substr(0, 1) + (digits.size() > 1 ? "." + digits.substr(1) : "");
    return fmt::format("{}{}e{}{:02d}", sign, m, exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
  }
  if (exp < 0) return sign + "0." + std::string(size_t(-exp - 1), '0') + digits;
  if (digits.size() <= size_t(exp) + 1) return sign + digits + std::string(size_t(exp) + 1 - digits.size(), '0') + ".0";
  return sign + digits.substr(0, size_t(exp) + 1) + "." + digits.substr(size_t(exp) + 1);
}

void py_json_string(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += char(c);
        }
    }
  }
  out += '"';
}

void py_json(const Json& v, int indent, int depth, std::string& out) {
  auto newline = [&](int d) {
    if (indent >= 0) out += '\n' + std::string(size_t(indent) * size_t(d), ' ');
  };
  const char* item_sep = indent >= 0 ? "," : ", ";
  switch (v.type()) {
    case Json::value_t::null: out += "null"; break;
    case Json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; break;
    case Json::value_t::number_integer: out += std::to_string(v.get<int64_t>()); break;
    case Json::value_t::number_unsigned: out += std::to_string(v.get<uint64_t>()); break;
    case Json::value_t::number_float: out += py_float(v.get<double>()); break;
    case Json::value_t::string: py_json_string(v.get_ref<const std::string&>(), out); break;
    case Json::value_t::array:
      if (v.empty()) {
        out += "[]";
        break;
      }
      out += '[';
      for (size_t i = 0; i < v.size(); ++i) {
        if (i) out += item_sep;
        newline(depth + 1);
        py_json(v[i], indent, depth + 1, out);
      }
      newline(depth);
      out += ']';
      break;
    case Json::value_t::object: {
      if (v.empty()) {
        out += "{}";
        break;
      }
      out += '{';
      bool first = true;
      for (const auto& [k, x] : v.items()) {
        if (!first) out += item_sep;
        first = false;
        newline(depth + 1);
        py_json_string(k, out);
        out += ": ";
        py_json(x, indent, depth + 1, out);
      }
      newline(depth);
      out += '}';
      break;
    }
    default: fail("tojson: cannot write a {} value", v.type_name());
  }
}

// What {{ value }} prints for a JSON value that is not a string: Python's str() of it (scalars only).
std::string py_str(const Json& v, const std::string& where) {
  switch (v.type()) {
    case Json::value_t::null: return "None";
    case Json::value_t::boolean: return v.get<bool>() ? "True" : "False";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float: return py_json_dumps(v);
    case Json::value_t::string: return v.get<std::string>();
    default: fail("{}: expected a string, got {}", where, v.type_name());
  }
}

bool is_py_space(char32_t cp) { return unicode::is_white_space(cp) || (cp >= 0x1C && cp <= 0x1F); }

// Truthiness of a JSON value as the template sees it (a missing key is undefined, hence false).
bool truthy(const Json& m, const char* key) {
  if (!m.contains(key)) return false;
  const Json& v = m[key];
  switch (v.type()) {
    case Json::value_t::null: return false;
    case Json::value_t::boolean: return v.get<bool>();
    case Json::value_t::string: return !v.get_ref<const std::string&>().empty();
    case Json::value_t::array:
    case Json::value_t::object: return !v.empty();
    case Json::value_t::number_integer: return v.get<int64_t>() != 0;
    case Json::value_t::number_unsigned: return v.get<uint64_t>() != 0;
    case Json::value_t::number_float: return v.get<double>() != 0;
    default: return false;
  }
}

const Json& array_field(const Json& m, const char* name, const std::string& where) {
  if (!m.contains(name) || !m[name].is_array())
    fail("{}.{}: expected an array", where, name);
  return m[name];
}

const Json& required(const Json& m, const char* name, const std::string& where) {
  if (!m.is_object() || !m.contains(name)) fail("{}: missing '{}'", where, name);
  return m[name];
}

const Json& first_message(const Json& messages, const char* family) {
  if (messages.empty()) fail("messages: the {} template needs at least one message", family);
  std::string where;
  return message_at(messages, 0, where);
}

bool role_is(const Json& m, const char* role) { return m.contains("role") && m["role"] == role; }

// Python's str.lstrip('\n') / rstrip('\n').
std::string lstrip_newlines(std::string_view s) {
  return std::string(s.substr(std::min(s.find_first_not_of('\n'), s.size())));
}
std::string rstrip_newlines(std::string_view s) {
  size_t e = s.find_last_not_of('\n');
  return std::string(s.substr(0, e == std::string_view::npos ? 0 : e + 1));
}

// The "<tool_call>...</tool_call>" blocks of an assistant turn in Qwen's templates, each after a "\n" except
// the first when `newline_first` is false. Arguments: tojson, or verbatim when a string and `string_verbatim`.
std::string qwen_tool_calls(const Json& m, const std::string& where, bool newline_first, bool string_verbatim) {
  std::string body;
  const Json& list = array_field(m, "tool_calls", where);
  for (size_t k = 0; k < list.size(); ++k) {
    std::string at = fmt::format("{}.tool_calls[{}]", where, k);
    const Json* call = &list[k];
    if (call->is_object() && call->contains("function")) {
      call = &(*call)["function"];
      at += ".function";
    }
    if (!call->is_object()) fail("{}: expected an object", at);
    const Json& args = required(*call, "arguments", at);
    if (k > 0 || newline_first) body += "\n";
    body += "<tool_call>\n{\"name\": \"" + py_str(required(*call, "name", at), at + ".name") + "\", \"arguments\": " +
            (string_verbatim && args.is_string() ? args.get<std::string>() : py_json_dumps(args)) + "}\n</tool_call>";
  }
  return body;
}

// The tool messages of Qwen's templates: consecutive ones share one user turn.
std::string qwen_tool_response(const Json& messages, size_t i, const std::string& where) {
  std::string s;
  if (i == 0 || !role_is(messages[i - 1], "tool")) s += "<|im_start|>user";
  s += "\n<tool_response>\n" + py_str(required(messages[i], "content", where), where + ".content") +
       "\n</tool_response>";
  if (i + 1 == messages.size() || !role_is(messages[i + 1], "tool")) s += "<|im_end|>\n";
  return s;
}

// The tools block of Qwen's system turn, between the system text and "<|im_end|>\n".
std::string qwen_tools_block(const Json& tools) {
  std::string s = "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
                  "You are provided with function signatures within <tools></tools> XML tags:\n<tools>";
  for (const Json& tool : tools) {
    s += '\n';
    s += py_json_dumps(tool);
  }
  return s + "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
             "<tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": "
             "<args-json-object>}\n</tool_call><|im_end|>\n";
}

}  // namespace

std::string py_json_dumps(const Json& v, int indent) {
  std::string out;
  py_json(v, indent, 0, out);
  return out;
}

std::string py_strip(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e) {
    char32_t cp;
    size_t n = unicode::decode_utf8(s.data(), s.size(), b, cp);
    if (!is_py_space(cp)) break;
    b += n;
  }
  while (e > b) {
    size_t start = e - 1;
    while (start > b && (uint8_t(s[start]) & 0xC0) == 0x80) --start;
    char32_t cp;
    unicode::decode_utf8(s.data(), s.size(), start, cp);
    if (!is_py_space(cp)) break;
    e = start;
  }
  return std::string(s.substr(b, e - b));
}

// Qwen2.5 Instruct: ChatML. The system block comes first (the first message if it is a system one, else
// "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."), with the tool schemas when `tools`
// is non-empty. Assistant turns with tool_calls write each call as <tool_call>{"name", "arguments"}</tool_call>
// (arguments through tojson, so a string argument is quoted again); consecutive tool results share one user
// block. Other roles render nothing. Assistant spans: what follows "<|im_start|>assistant\n" up to and with
// "<|im_end|>".
std::vector<ChatSpan> render_qwen25(const Json& messages, bool add_generation_prompt, const Json& tools) {
  static const std::string kDefaultSystem = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
  SpanWriter out;
  std::string where;
  const Json& first = first_message(messages, "qwen2.5");
  const bool first_is_system = role_is(first, "system");
  if (!tools.is_null() && !tools.empty()) {
    out.prompt("<|im_start|>system\n" + (first_is_system ? text_field(first, "content", "messages[0]") : kDefaultSystem) +
               "\n\n" + qwen_tools_block(tools));
  } else {
    out.prompt("<|im_start|>system\n" + (first_is_system ? text_field(first, "content", "messages[0]") : kDefaultSystem) +
               "<|im_end|>\n");
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = message_at(messages, i, where);
    const std::string& role = text_field(m, "role", where);
    const bool calls = truthy(m, "tool_calls");
    if (role == "user" || (role == "system" && i > 0)) {
      out.prompt("<|im_start|>" + role + "\n" + text_field(m, "content", where) + "<|im_end|>\n");
    } else if (role == "assistant" && !calls) {
      out.prompt("<|im_start|>assistant\n");
      out.generated(text_field(m, "content", where) + "<|im_end|>");
      out.prompt("\n");
    } else if (role == "assistant") {
      std::string body;
      if (truthy(m, "content")) body += "\n" + text_field(m, "content", where);
      body += qwen_tool_calls(m, where, true, false);
      // body starts with "\n" (content or a call follows): that newline ends the generation prompt.
      out.prompt("<|im_start|>assistant\n");
      out.generated(body.substr(1) + "<|im_end|>");
      out.prompt("\n");
    } else if (role == "tool") {
      out.prompt(qwen_tool_response(messages, i, where));
    }
  }
  if (add_generation_prompt) out.prompt("<|im_start|>assistant\n");
  return out.finish();
}

// Qwen3: ChatML like Qwen2.5 without a default system prompt. The last query is the last user message that
// is not a wrapped "<tool_response>...</tool_response>"; assistant turns up to it lose their reasoning (the
// text after the last "</think>" is kept, leading newlines stripped); after it, a turn that is the last
// message or has reasoning is written "<think>\n{reasoning}\n</think>\n\n{content}". reasoning_content,
// when given, is the reasoning. Tool-call arguments that are strings are written verbatim.
std::vector<ChatSpan> render_qwen3(const Json& messages, bool add_generation_prompt, const Json& tools) {
  SpanWriter out;
  std::string where;
  const Json& first = first_message(messages, "qwen3");
  const bool first_is_system = role_is(first, "system");
  if (!tools.is_null() && !tools.empty()) {
    out.prompt("<|im_start|>system\n" + (first_is_system ? text_field(first, "content", "messages[0]") + "\n\n" : "") +
               qwen_tools_block(tools));
  } else if (first_is_system) {
    out.prompt("<|im_start|>system\n" + text_field(first, "content", "messages[0]") + "<|im_end|>\n");
  }
  size_t last_query = messages.size() - 1;
  for (size_t i = messages.size(); i-- > 0;) {
    const Json& m = message_at(messages, i, where);
    if (!role_is(m, "user")) continue;
    const std::string& c = text_field(m, "content", where);
    const std::string open = "<tool_response>", close = "</tool_response>";
    bool wrapped = c.rfind(open, 0) == 0 && c.size() >= close.size() &&
                   c.compare(c.size() - close.size(), close.size(), close) == 0;
    if (!wrapped) {
      last_query = i;
      break;
    }
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = message_at(messages, i, where);
    const std::string& role = text_field(m, "role", where);
    if (role == "user" || (role == "system" && i > 0)) {
      out.prompt("<|im_start|>" + role + "\n" + text_field(m, "content", where) + "<|im_end|>\n");
    } else if (role == "assistant") {
      const std::string& raw = text_field(m, "content", where);
      std::string content = raw, reasoning;
      if (m.contains("reasoning_content") && !m["reasoning_content"].is_null()) {
        reasoning = text_field(m, "reasoning_content", where);
      } else if (size_t close = raw.rfind("</think>"); close != std::string::npos) {
        content = lstrip_newlines(std::string_view(raw).substr(close + 8));
        std::string before = rstrip_newlines(std::string_view(raw).substr(0, raw.find("</think>")));
        size_t open = before.rfind("<think>");
        reasoning = lstrip_newlines(open == std::string::npos ? before : before.substr(open + 7));
      }
      std::string body;
      if (i > last_query && (i + 1 == messages.size() || !reasoning.empty())) {
        body = "<think>\n" + lstrip_newlines(rstrip_newlines(reasoning)) + "\n</think>\n\n" + lstrip_newlines(content);
      } else {
        body = content;
      }
      if (truthy(m, "tool_calls")) body += qwen_tool_calls(m, where, !content.empty(), true);
      out.prompt("<|im_start|>assistant\n");
      out.generated(body + "<|im_end|>");
      out.prompt("\n");
    } else if (role == "tool") {
      out.prompt(qwen_tool_response(messages, i, where));
    }
  }
  if (add_generation_prompt) out.prompt("<|im_start|>assistant\n");
  return out.finish();
}

// Llama 3.1 Instruct: BOS, then a system header with "Cutting Knowledge Date: December 2023" and "Today Date:
// 26 Jul 2024" (date_string's default), the first message's content (trimmed) when it is a system one. With
// `tools` (even empty) the header says "Environment: ipython" and the schemas (tojson, indent 4) go into the
// first remaining message, written as a user turn. A message with a tool_calls key (exactly one call) is an
// assistant turn {"name": ..., "parameters": tojson(arguments)}; tool and ipython messages are ipython turns
// whose content goes through tojson when it is a string, list or object (so a string is quoted). Other
// contents are trimmed. Every turn ends with <|eot_id|>. Assistant spans: what follows the assistant header,
// with its <|eot_id|>.
std::vector<ChatSpan> render_llama31(const Json& messages, bool add_generation_prompt, const Json& tools,
                                     const std::string& bos) {
  SpanWriter out;
  std::string where;
  const Json& first = first_message(messages, "llama-3.1");
  size_t next = 0;
  std::string system_message;
  if (role_is(first, "system")) {
    system_message = py_strip(text_field(first, "content", "messages[0]"));
    next = 1;
  }
  const bool with_tools = !tools.is_null();
  std::string s = bos + "<|start_header_id|>system<|end_header_id|>\n\n";
  if (with_tools) s += "Environment: ipython\n";
  s += "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n" + system_message + "<|eot_id|>";
  if (with_tools) {
    if (next >= messages.size())
      fail("messages: Cannot put tools in the first user message when there's no first user message! (raised by "
           "the llama-3.1 template)");
    const Json& m = message_at(messages, next, where);
    s += "<|start_header_id|>user<|end_header_id|>\n\n"
         "Given the following functions, please respond with a JSON for a function call with its proper arguments "
         "that best answers the given prompt.\n\n"
         "Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its "
         "value}.Do not use variables.\n\n";
    for (const Json& t : tools) s += py_json_dumps(t, 4) + "\n\n";
    s += py_strip(text_field(m, "content", where)) + "<|eot_id|>";
    ++next;
  }
  out.prompt(std::move(s));
  for (size_t i = next; i < messages.size(); ++i) {
    const Json& m = message_at(messages, i, where);
    const std::string& role = text_field(m, "role", where);
    if (m.contains("tool_calls")) {
      const Json& list = array_field(m, "tool_calls", where);
      if (list.size() != 1)
        fail("{}: This model only supports single tool-calls at once! (raised by the llama-3.1 template)", where);
      std::string at = where + ".tool_calls[0].function";
      const Json& call = required(list[0], "function", where + ".tool_calls[0]");
      out.prompt("<|start_header_id|>assistant<|end_header_id|>\n\n");
      out.generated("{\"name\": \"" + text_field(call, "name", at) + "\", \"parameters\": " +
                    py_json_dumps(required(call, "arguments", at)) + "}<|eot_id|>");
    } else if (role == "tool" || role == "ipython") {
      const Json& content = required(m, "content", where);
      out.prompt("<|start_header_id|>ipython<|end_header_id|>\n\n" +
                 (content.is_string() || content.is_structured() ? py_json_dumps(content)
                                                                  : py_str(content, where + ".content")) +
                 "<|eot_id|>");
    } else {
      out.prompt("<|start_header_id|>" + role + "<|end_header_id|>\n\n");
      std::string text = py_strip(text_field(m, "content", where)) + "<|eot_id|>";
      if (role == "assistant") {
        out.generated(std::move(text));
      } else {
        out.prompt(std::move(text));
      }
    }
  }
  if (add_generation_prompt) out.prompt("<|start_header_id|>assistant<|end_header_id|>\n\n");
  return out.finish();
}

// Llama 3 (the original Instruct template): every message as a header, its trimmed content and <|eot_id|>,
// BOS before the first; the assistant header always follows, whatever add_generation_prompt says.
std::vector<ChatSpan> render_llama3(const Json& messages, const std::string& bos) {
  SpanWriter out;
  std::string where;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = message_at(messages, i, where);
    const std::string& role = text_field(m, "role", where);
    out.prompt((i == 0 ? bos : std::string()) + "<|start_header_id|>" + role + "<|end_header_id|>\n\n");
    std::string text = py_strip(text_field(m, "content", where)) + "<|eot_id|>";
    if (role == "assistant") {
      out.generated(std::move(text));
    } else {
      out.prompt(std::move(text));
    }
  }
  out.prompt("<|start_header_id|>assistant<|end_header_id|>\n\n");
  return out.finish();
}

}  // namespace dseek::chat
