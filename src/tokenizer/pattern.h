// A split / replace pattern of tokenizer.json: {"String": literal} or {"Regex": oniguruma pattern}.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/regex.h"

namespace dseek::tok {

class Pattern {
 public:
  // `where` names the field in error messages, e.g. "tokenizer.json: pre_tokenizer.pretokenizers[0].pattern".
  static Pattern from_json(const nlohmann::json& j, const std::string& where);

  // Non-overlapping matches [start, end), leftmost first.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  bool is_regex() const { return regex_ != nullptr; }
  const std::string& source() const { return is_regex() ? regex_->pattern() : literal_; }

 private:
  std::string literal_;
  std::shared_ptr<Regex> regex_;
};

}  // namespace dseek::tok
