#include "tokenizer/text_stream.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace dseek {

namespace {
// Length of the longest suffix of `s` that is a proper prefix of `tag`.
size_t partial_suffix(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n)
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  return 0;
}
// Moves `cut` back so that s[0, cut) ends on a complete UTF-8 character.
size_t char_boundary(std::string_view s, size_t cut) { return unicode::complete_utf8_prefix(s.substr(0, cut)); }
}  // namespace

StopStrings::StopStrings(std::vector<std::string> stops) : stops_(std::move(stops)) {
  std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
  for (const std::string& s : stops_) max_len_ = std::max(max_len_, s.size());
}

std::string StopStrings::push(std::string_view text) {
  if (stopped_) return {};
  pending_ += text;
  size_t first = std::string::npos;
  for (const std::string& s : stops_) first = std::min(first, pending_.find(s));
  if (first != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, first);
    pending_.clear();
    return out;
  }
  size_t hold = 0;
  for (const std::string& s : stops_) hold = std::max(hold, partial_suffix(pending_, s));
  size_t cut = char_boundary(pending_, pending_.size() - hold);
  std::string out = pending_.substr(0, cut);
  pending_.erase(0, cut);
  return out;
}

std::string StopStrings::flush() {
  std::string out;
  if (!stopped_) out.swap(pending_);
  return out;
}

std::vector<ReasoningStream::Part> ReasoningStream::push(std::string_view text) {
  static constexpr std::string_view kOpen = "<think>", kClose = "</think>";
  pending_ += text;
  std::vector<Part> parts;
  auto emit = [&](bool reasoning, std::string s) {
    if (s.empty()) return;
    if (!reasoning && s.find_first_not_of(" \t\r\n") != std::string::npos) answer_started_ = true;
    if (!parts.empty() && parts.back().reasoning == reasoning) {
      parts.back().text += s;
    } else {
      parts.push_back({reasoning, std::move(s)});
    }
  };
  for (;;) {
    if (reasoning_) {
      size_t at = pending_.find(kClose);
      if (at != std::string::npos) {
        emit(true, pending_.substr(0, at));
        pending_.erase(0, at + kClose.size());
        reasoning_ = false;
        continue;
      }
      size_t cut = char_boundary(pending_, pending_.size() - partial_suffix(pending_, kClose));
      emit(true, pending_.substr(0, cut));
      pending_.erase(0, cut);
      break;
    }
    if (!answer_started_) {  // leading whitespace and a possible "<think>" wait until decided
      size_t text = pending_.find_first_not_of(" \t\r\n");
      if (text == std::string::npos) break;
      std::string_view rest = std::string_view(pending_).substr(text);
      if (rest.substr(0, kOpen.size()) == kOpen) {
        pending_.erase(0, text + kOpen.size());
        reasoning_ = true;
        continue;
      }
      if (kOpen.substr(0, rest.size()) == rest) break;
    }
    emit(false, pending_);
    pending_.clear();
    break;
  }
  return parts;
}

std::vector<ReasoningStream::Part> ReasoningStream::flush() {
  std::vector<Part> parts;
  if (!pending_.empty()) parts.push_back({reasoning_, pending_});
  pending_.clear();
  return parts;
}

}  // namespace dseek
