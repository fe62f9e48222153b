// Oniguruma regular expressions with the settings of Hugging Face tokenizers (onig crate defaults: Ruby
// syntax, UTF-8, no options), so that generic Split / Replace patterns match exactly as there.
#pragma once
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace dseek::tok {

class Regex {
 public:
  // Throws dseek::Error naming `where` when the pattern does not compile.
  Regex(const std::string& pattern, const std::string& where);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // All matches as byte ranges [start, end), leftmost first, as onig's find_iter yields them: an empty match
  // right where the previous match ended is skipped by advancing one character.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view text) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  void* regex_ = nullptr;  // OnigRegex
};

}  // namespace dseek::tok
