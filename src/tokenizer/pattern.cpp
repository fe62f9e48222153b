#include "tokenizer/pattern.h"

#include "core/error.h"

namespace dseek::tok {

Pattern Pattern::from_json(const nlohmann::json& j, const std::string& where) {
  Pattern p;
  if (j.is_object() && j.size() == 1 && j.contains("String") && j["String"].is_string()) {
    p.literal_ = j["String"].get<std::string>();
  } else if (j.is_object() && j.size() == 1 && j.contains("Regex") && j["Regex"].is_string()) {
    p.regex_ = std::make_shared<Regex>(j["Regex"].get<std::string>(), where);
  } else {
    fail("{}: expected {{\"String\": ...}} or {{\"Regex\": ...}}", where);
  }
  return p;
}

std::vector<std::pair<size_t, size_t>> Pattern::find_all(std::string_view text) const {
  if (regex_) return regex_->find_all(text);
  std::vector<std::pair<size_t, size_t>> out;
  if (literal_.empty()) return out;
  for (size_t pos = text.find(literal_); pos != std::string_view::npos; pos = text.find(literal_, pos)) {
    out.emplace_back(pos, pos + literal_.size());
    pos += literal_.size();
  }
  return out;
}

}  // namespace dseek::tok
