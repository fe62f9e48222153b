#include "tokenizer/regex.h"

#include <oniguruma.h>

#include <mutex>

#include "core/error.h"
#include "tokenizer/unicode.h"

namespace dseek::tok {

namespace {
void init_oniguruma() {
  static std::once_flag once;
  std::call_once(once, [] {
    OnigEncoding encodings[] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}
}  // namespace

Regex::Regex(const std::string& pattern, const std::string& where) : pattern_(pattern) {
  init_oniguruma();
  OnigErrorInfo info;
  OnigRegex re = nullptr;
  const auto* p = reinterpret_cast<const OnigUChar*>(pattern.data());
  int r = onig_new(&re, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8, ONIG_SYNTAX_RUBY, &info);
  if (r != ONIG_NORMAL) {
    OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
    onig_error_code_to_str(msg, r, &info);
    fail("{}: regex '{}' does not compile: {}", where, pattern, reinterpret_cast<char*>(msg));
  }
  regex_ = re;
}

Regex::~Regex() {
  if (regex_) onig_free(static_cast<OnigRegex>(regex_));
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view text) const {
  std::vector<std::pair<size_t, size_t>> out;
  auto* re = static_cast<OnigRegex>(regex_);
  OnigRegion* region = onig_region_new();
  const auto* str = reinterpret_cast<const OnigUChar*>(text.data());
  const OnigUChar* end = str + text.size();
  size_t pos = 0;
  bool have_last = false;
  size_t last_end = 0;
  while (pos <= text.size()) {
    int r = onig_search(re, str, end, str + pos, end, region, ONIG_OPTION_NONE);
    if (r < 0) break;  // ONIG_MISMATCH (or an error: treated as no further match)
    size_t s = size_t(region->beg[0]), e = size_t(region->end[0]);
    if (s == e && have_last && last_end == e) {
      // Empty match right after the previous one: advance one character and search again.
      if (pos >= text.size()) break;
      char32_t cp;
      pos += unicode::decode_utf8(text.data(), text.size(), pos, cp);
      continue;
    }
    out.emplace_back(s, e);
    have_last = true;
    last_end = e;
    pos = e;
  }
  onig_region_free(region, 1);
  return out;
}

}  // namespace dseek::tok
