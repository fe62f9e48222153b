// Added tokens of tokenizer.json ("added_tokens"): found in the text before pre-tokenization, leftmost-longest
// and non-overlapping, honouring single_word (no word character touches the match), lstrip / rstrip (the
// whitespace beside a match is absorbed into it). Tokens with normalized=true are matched in normalized text.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dseek::tok {

struct AddedToken {
  int32_t id = -1;
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
};

// A stretch of text [begin, end): an added token (id >= 0) or ordinary text (id == -1).
struct Segment {
  size_t begin, end;
  int32_t id;
};

class AddedTokenMatcher {
 public:
  // `patterns[i]` is the text matched for `tokens[i]` (its content, normalized if the token is normalized).
  void build(const std::vector<const AddedToken*>& tokens, const std::vector<std::string>& patterns);
  bool empty() const { return tokens_.empty(); }
  // Cuts `text` into segments covering it (empty text gives no segment).
  void split(std::string_view text, std::vector<Segment>& out) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> next;  // sorted by byte
    int32_t token = -1;                             // index into tokens_ when a pattern ends here
  };
  int32_t child(int32_t node, uint8_t b) const;
  std::vector<Node> nodes_;
  std::vector<const AddedToken*> tokens_;
  bool first_byte_[256] = {};
};

}  // namespace dseek::tok
