#include "tokenizer/added_tokens.h"

#include <algorithm>

#include "tokenizer/unicode.h"

namespace dseek::tok {

int32_t AddedTokenMatcher::child(int32_t node, uint8_t b) const {
  const auto& next = nodes_[node].next;
  auto it = std::lower_bound(next.begin(), next.end(), std::make_pair(b, int32_t(-1)));
  return it != next.end() && it->first == b ? it->second : -1;
}

void AddedTokenMatcher::build(const std::vector<const AddedToken*>& tokens, const std::vector<std::string>& patterns) {
  nodes_.assign(1, Node{});
  tokens_.clear();
  std::fill(std::begin(first_byte_), std::end(first_byte_), false);
  for (size_t t = 0; t < tokens.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;
    int32_t node = 0;
    for (unsigned char b : p) {
      int32_t c = child(node, b);
      if (c < 0) {
        c = int32_t(nodes_.size());
        nodes_.push_back(Node{});
        auto& next = nodes_[node].next;
        next.insert(std::lower_bound(next.begin(), next.end(), std::make_pair(b, int32_t(-1))), {b, c});
      }
      node = c;
    }
    if (nodes_[node].token < 0) {  // the first token with a given content wins
      nodes_[node].token = int32_t(tokens_.size());
      tokens_.push_back(tokens[t]);
    }
    first_byte_[uint8_t(p[0])] = true;
  }
}

namespace {
char32_t last_char(std::string_view s) {
  size_t i = s.size();
  while (i > 0 && (uint8_t(s[i - 1]) & 0xC0) == 0x80) --i;
  if (i > 0) --i;
  char32_t cp;
  unicode::decode_utf8(s.data(), s.size(), i, cp);
  return cp;
}
char32_t first_char(std::string_view s) {
  char32_t cp;
  unicode::decode_utf8(s.data(), s.size(), 0, cp);
  return cp;
}
}  // namespace

void AddedTokenMatcher::split(std::string_view text, std::vector<Segment>& out) const {
  size_t done = 0;  // end of the last emitted segment
  size_t i = 0;
  while (i < text.size()) {
    if (!first_byte_[uint8_t(text[i])]) {
      ++i;
      continue;
    }
    // Longest pattern starting at i.
    int32_t node = 0, best = -1;
    size_t best_end = 0;
    for (size_t j = i; j < text.size(); ++j) {
      node = child(node, uint8_t(text[j]));
      if (node < 0) break;
      if (nodes_[node].token >= 0) best = nodes_[node].token, best_end = j + 1;
    }
    if (best < 0) {
      ++i;
      continue;
    }
    const AddedToken& tok = *tokens_[best];
    size_t start = i, stop = best_end;
    i = best_end;
    if (tok.single_word) {
      bool word_before = start > 0 && unicode::is_word_char(last_char(text.substr(0, start)));
      bool word_after = stop < text.size() && unicode::is_word_char(first_char(text.substr(stop)));
      if (word_before || word_after) continue;
    }
    if (tok.lstrip) {
      size_t s = start;
      while (s > done) {
        size_t k = s;
        while (k > 0 && (uint8_t(text[k - 1]) & 0xC0) == 0x80) --k;
        if (k > 0) --k;
        char32_t cp;
        unicode::decode_utf8(text.data(), text.size(), k, cp);
        if (!unicode::is_white_space(cp)) break;
        s = k;
      }
      start = s;
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        char32_t cp;
        size_t n = unicode::decode_utf8(text.data(), text.size(), stop, cp);
        if (!unicode::is_white_space(cp)) break;
        stop += n;
      }
    }
    if (done < start) out.push_back({done, start, -1});
    out.push_back({start, stop, tok.id});
    done = stop;
    i = std::max(i, stop);
  }
  if (done < text.size()) out.push_back({done, text.size(), -1});
}

}  // namespace dseek::tok
