#include "serve/openai_request.h"

#include <cmath>
#include <fmt/format.h>

#include "serve/api_error.h"

namespace dseek::serve {

namespace {
using json = nlohmann::json;

const char* type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    default: return "a number";
  }
}

[[noreturn]] void wrong_type(const std::string& param, const char* expected, const json& v) {
  bad_field(param, fmt::format("'{}' must be {}, got {}", param, expected, type_name(v)), "invalid_type");
}

// A present, non-null field, or nullptr.
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::optional<double> number(const json& body, const char* name, double lo, double hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) wrong_type(name, "a number", *v);
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi)) bad_field(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, x));
  return x;
}

std::optional<int64_t> integer(const json& body, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  // 3.0 is accepted as 3 (JSON has one number type), 3.5 is not
  if (!v->is_number() || (v->is_number_float() && std::floor(v->get<double>()) != v->get<double>()))
    wrong_type(name, "an integer", *v);
  if (v->is_number_float() && std::fabs(v->get<double>()) > 9e15) wrong_type(name, "an integer", *v);
  const int64_t x = v->is_number_unsigned() ? (v->get<uint64_t>() > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(v->get<uint64_t>()))
                                            : v->is_number_float() ? int64_t(v->get<double>()) : v->get<int64_t>();
  if (x < lo || x > hi) bad_field(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, x));
  return x;
}

std::optional<bool> boolean(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_boolean()) wrong_type(name, "a boolean", *v);
  return v->get<bool>();
}

// content: a string, or an array of {"type": "text", "text": ...} parts (joined), or null.
std::string content_text(const json& content, const std::string& param) {
  if (content.is_null()) return "";
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) wrong_type(param, "a string or an array of content parts", content);
  std::string text;
  for (size_t i = 0; i < content.size(); i++) {
    const json& part = content[i];
    const std::string p = fmt::format("{}[{}]", param, i);
    if (!part.is_object()) wrong_type(p, "an object", part);
    auto type = part.find("type");
    if (type == part.end() || !type->is_string()) bad_field(p + ".type", fmt::format("'{}.type' is required (a string)", p));
    if (*type != "text")
      bad_field(p + ".type", fmt::format("content part type '{}' is not supported (only 'text')", type->get<std::string>()));
    auto t = part.find("text");
    if (t == part.end() || !t->is_string()) bad_field(p + ".text", fmt::format("'{}.text' must be a string", p));
    text += t->get<std::string>();
  }
  return text;
}
}  // namespace

CompletionRequest parse_completion_request(const std::string& text, bool chat) {
  json body;
  try {
    body = json::parse(text);
  } catch (const json::exception& e) {
    throw ApiError(400, fmt::format("We could not parse the JSON body of your request ({})", e.what()), "",
                   "invalid_json");
  }
  if (!body.is_object()) throw ApiError(400, fmt::format("the request body must be a JSON object, got {}", type_name(body)));
  CompletionRequest r;
  r.chat = chat;
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) wrong_type("model", "a string", *m);
    r.model = m->get<std::string>();
  }
  if (chat) {
    const json* msgs = field(body, "messages");
    if (!msgs) bad_field("messages", "'messages' is required", "missing_required_parameter");
    if (!msgs->is_array()) wrong_type("messages", "an array", *msgs);
    if (msgs->empty()) bad_field("messages", "'messages' must hold at least one message");
    r.messages = nlohmann::ordered_json::array();
    for (size_t i = 0; i < msgs->size(); i++) {
      const json& m = (*msgs)[i];
      const std::string p = fmt::format("messages[{}]", i);
      if (!m.is_object()) wrong_type(p, "an object", m);
      auto role = m.find("role");
      if (role == m.end() || !role->is_string()) bad_field(p + ".role", fmt::format("'{}.role' is required (a string)", p));
      const std::string rs = role->get<std::string>();
      if (rs != "system" && rs != "user" && rs != "assistant" && rs != "tool" && rs != "developer")
        bad_field(p + ".role", fmt::format("'{}.role' must be system, developer, user, assistant or tool, got '{}'", p, rs));
      nlohmann::ordered_json out;
      out["role"] = rs == "developer" ? "system" : rs;
      auto content = m.find("content");
      out["content"] = content_text(content == m.end() ? json(nullptr) : *content, p + ".content");
      if (auto tc = m.find("tool_calls"); tc != m.end() && !tc->is_null()) out["tool_calls"] = *tc;
      if (auto id = m.find("tool_call_id"); id != m.end() && id->is_string()) out["tool_call_id"] = *id;
      r.messages.push_back(std::move(out));
    }
    if (const json* t = field(body, "tools")) {
      if (!t->is_array()) wrong_type("tools", "an array", *t);
      r.tools = *t;
    }
  } else {
    const json* p = field(body, "prompt");
    if (!p) bad_field("prompt", "'prompt' is required", "missing_required_parameter");
    if (p->is_string()) {
      r.prompt = p->get<std::string>();
    } else if (p->is_array() && p->size() == 1 && (*p)[0].is_string()) {
      r.prompt = (*p)[0].get<std::string>();
    } else if (p->is_array() && !p->empty() && (*p)[0].is_number()) {
      for (size_t i = 0; i < p->size(); i++) {
        const json& v = (*p)[i];
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
          bad_field("prompt", fmt::format("'prompt[{}]' must be a token id (an integer >= 0)", i));
        r.prompt_ids.push_back(int32_t(v.get<int64_t>()));
      }
    } else if (p->is_array() && p->size() > 1 && (*p)[0].is_string()) {
      bad_field("prompt", "one prompt per request: send several prompts as several requests");
    } else {
      wrong_type("prompt", "a string or an array of token ids", *p);
    }
  }
  if (auto v = integer(body, "max_completion_tokens", 1, INT64_MAX)) r.max_tokens = *v;
  else if (auto v2 = integer(body, "max_tokens", 1, INT64_MAX)) r.max_tokens = *v2;
  if (auto v = number(body, "temperature", 0, 2)) r.temperature = float(*v);
  if (auto v = number(body, "top_p", 0, 1)) {
    if (*v == 0) bad_field("top_p", "'top_p' must be greater than 0 and at most 1, got 0");
    r.top_p = float(*v);
  }
  if (auto v = integer(body, "top_k", -1, INT32_MAX)) r.top_k = *v < 0 ? 0 : *v;
  if (auto v = number(body, "min_p", 0, 1)) r.min_p = float(*v);
  if (auto v = number(body, "repetition_penalty", 1e-6, 1e6)) r.repetition_penalty = float(*v);
  if (auto v = number(body, "frequency_penalty", -2, 2)) r.frequency_penalty = float(*v);
  if (auto v = number(body, "presence_penalty", -2, 2)) r.presence_penalty = float(*v);
  if (auto v = integer(body, "n", 1, 128)) r.n = int(*v);
  if (const json* s = field(body, "seed")) {
    if (!s->is_number_integer()) wrong_type("seed", "an integer", *s);
    r.seed = s->is_number_unsigned() ? s->get<uint64_t>() : uint64_t(s->get<int64_t>());
  }
  if (const json* s = field(body, "stop")) {
    if (s->is_string()) {
      r.stop.push_back(s->get<std::string>());
    } else if (s->is_array()) {
      if (s->size() > 4) bad_field("stop", fmt::format("'stop' holds at most 4 strings, got {}", s->size()));
      for (size_t i = 0; i < s->size(); i++) {
        if (!(*s)[i].is_string()) wrong_type(fmt::format("stop[{}]", i), "a string", (*s)[i]);
        r.stop.push_back((*s)[i].get<std::string>());
      }
    } else {
      wrong_type("stop", "a string or an array of strings", *s);
    }
    for (const auto& st : r.stop)
      if (st.empty()) bad_field("stop", "stop strings must not be empty");
  }
  if (chat) {
    const bool lp = boolean(body, "logprobs").value_or(false);
    const auto top = integer(body, "top_logprobs", 0, 20);
    if (top && !lp) bad_field("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    if (lp) r.logprobs = int(top.value_or(0));
  } else if (auto v = integer(body, "logprobs", 0, 20)) {
    r.logprobs = int(*v);
  }
  r.stream = boolean(body, "stream").value_or(false);
  r.ignore_eos = boolean(body, "ignore_eos").value_or(false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) wrong_type("stream_options", "an object", *so);
    if (!r.stream) bad_field("stream_options", "'stream_options' is only allowed when 'stream' is true");
    if (auto u = so->find("include_usage"); u != so->end() && !u->is_null()) {
      if (!u->is_boolean()) wrong_type("stream_options.include_usage", "a boolean", *u);
      r.include_usage = u->get<bool>();
    }
  }
  if (const json* rf = field(body, "response_format")) {
    if (!rf->is_object()) wrong_type("response_format", "an object", *rf);
    auto t = rf->find("type");
    if (t == rf->end() || !t->is_string()) bad_field("response_format.type", "'response_format.type' is required (a string)");
    const std::string ts = t->get<std::string>();
    if (ts == "json_object") r.json_object = true;
    else if (ts != "text")
      bad_field("response_format.type",
                fmt::format("response_format type '{}' is not supported (text or json_object)", ts));
  }
  return r;
}

}  // namespace dseek::serve
