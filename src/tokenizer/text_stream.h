// Streamed generated text: cutting at stop strings and separating R1-style <think>...</think> reasoning,
// with text that may be the start of a stop string or a tag held back until it is decided.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace dseek {

// Stops the stream at the first occurrence of any stop string; the stop string itself is not shown.
class StopStrings {
 public:
  explicit StopStrings(std::vector<std::string> stops);
  // The text that can be shown now (nothing more once stopped()).
  std::string push(std::string_view text);
  std::string flush();  // the held-back rest (when the stream ends without a stop string)
  bool stopped() const { return stopped_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  size_t max_len_ = 0;
  bool stopped_ = false;
};

// Splits streamed text into reasoning and answer parts: text inside <think>...</think> is reasoning. With
// `opened`, the stream starts inside the block (R1's generation prompt ends with "<think>\n").
class ReasoningStream {
 public:
  struct Part {
    bool reasoning;
    std::string text;
  };
  explicit ReasoningStream(bool opened) : reasoning_(opened) {}
  std::vector<Part> push(std::string_view text);
  std::vector<Part> flush();
  bool in_reasoning() const { return reasoning_; }

 private:
  bool reasoning_;
  bool answer_started_ = false;  // non-whitespace answer text was shown: "<think>" no longer opens a block
  std::string pending_;
};

}  // namespace dseek
