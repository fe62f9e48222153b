#include "tokenizer/post_processor.h"

#include "core/error.h"

namespace dseek::tok {

using nlohmann::json;

PostProcessor PostProcessor::from_json(const json& j, const std::string& where) {
  PostProcessor p;
  if (j.is_null()) return p;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    fail("{}: expected an object with a \"type\"", where);
  std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return p;
  if (type == "Sequence") {
    if (!j.contains("processors") || !j["processors"].is_array()) fail("{}.processors: expected an array", where);
    for (size_t i = 0; i < j["processors"].size(); ++i) {
      PostProcessor inner = from_json(j["processors"][i], fmt::format("{}.processors[{}]", where, i));
      p.prefix.insert(p.prefix.begin(), inner.prefix.begin(), inner.prefix.end());
      p.suffix.insert(p.suffix.end(), inner.suffix.begin(), inner.suffix.end());
    }
    return p;
  }
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto id_of = [&](const char* name) -> int32_t {
      if (!j.contains(name) || !j[name].is_array() || j[name].size() != 2 || !j[name][1].is_number_integer())
        fail("{}.{}: expected [token, id]", where, name);
      return j[name][1].get<int32_t>();
    };
    p.prefix = {id_of("cls")};
    p.suffix = {id_of("sep")};
    return p;
  }
  if (type == "TemplateProcessing") {
    if (!j.contains("single") || !j["single"].is_array()) fail("{}.single: expected an array", where);
    const json& specials = j.contains("special_tokens") ? j["special_tokens"] : json::object();
    bool seen_sequence = false;
    for (size_t i = 0; i < j["single"].size(); ++i) {
      const json& item = j["single"][i];
      std::string at = fmt::format("{}.single[{}]", where, i);
      if (item.contains("Sequence")) {
        if (seen_sequence) fail("{}: the single template holds the sequence twice", at);
        seen_sequence = true;
      } else if (item.contains("SpecialToken") && item["SpecialToken"].contains("id")) {
        if (!item["SpecialToken"]["id"].is_string()) fail("{}.SpecialToken.id: expected a string", at);
        std::string name = item["SpecialToken"]["id"].get<std::string>();
        if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array())
          fail("{}: special token '{}' is not in special_tokens", at, name);
        for (const json& id : specials[name]["ids"]) {
          if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > INT32_MAX)
            fail("{}.special_tokens.{}.ids: expected token ids, got {}", where, name, id.dump());
          (seen_sequence ? p.suffix : p.prefix).push_back(id.get<int32_t>());
        }
      } else {
        fail("{}: expected {{\"Sequence\": ...}} or {{\"SpecialToken\": ...}}", at);
      }
    }
    return p;
  }
  fail("{}: unsupported post-processor type '{}' (supported: TemplateProcessing, ByteLevel, Sequence, "
       "BertProcessing, RobertaProcessing)",
       where, type);
}

}  // namespace dseek::tok
