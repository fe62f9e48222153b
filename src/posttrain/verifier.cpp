#include "posttrain/verifier.h"

#include <algorithm>
#include <numeric>

#include "tokenizer/unicode.h"

namespace dseek {

namespace {

constexpr std::string_view kThinkOpen = "<think>", kThinkClose = "</think>";
constexpr std::string_view kAnswerOpen = "<answer>", kAnswerClose = "</answer>";

// Length of the UTF-8 character at s[i] and its code point.
size_t char_at(std::string_view s, size_t i, char32_t& cp) { return unicode::decode_utf8(s.data(), s.size(), i, cp); }

// Index of the first non-whitespace character at or after i (Unicode White_Space).
size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size()) {
    char32_t cp;
    size_t len = char_at(s, i, cp);
    if (!unicode::is_white_space(cp)) break;
    i += len;
  }
  return i;
}

// `s` without leading and trailing Unicode whitespace.
std::string_view trim(std::string_view s) {
  s.remove_prefix(skip_space(s, 0));
  // trailing: scan forward, remembering where the last non-space character ends
  size_t end = 0;
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t len = char_at(s, i, cp);
    i += len;
    if (!unicode::is_white_space(cp)) end = i;
  }
  return s.substr(0, end);
}

bool has_tag(std::string_view s) {
  for (std::string_view t : {kThinkOpen, kThinkClose, kAnswerOpen, kAnswerClose})
    if (s.find(t) != std::string_view::npos) return true;
  return false;
}

// Index just past the '}' closing the '{' at s[open], or npos when the braces never balance.
size_t match_brace(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); i++) {
    if (s[i] == '{') depth++;
    if (s[i] == '}' && --depth == 0) return i + 1;
  }
  return std::string_view::npos;
}

// Content of the last balanced \boxed{...} in s.
std::optional<std::string_view> last_boxed(std::string_view s) {
  constexpr std::string_view kBoxed = "\\boxed{";
  for (size_t pos = s.rfind(kBoxed); pos != std::string_view::npos;) {
    size_t open = pos + kBoxed.size() - 1;
    size_t end = match_brace(s, open);
    if (end != std::string_view::npos) return s.substr(open + 1, end - open - 2);
    pos = pos == 0 ? std::string_view::npos : s.rfind(kBoxed, pos - 1);
  }
  return std::nullopt;
}

std::optional<std::string> non_empty(std::string_view s) {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  return std::string(s);
}

}  // namespace

std::optional<std::string> extract_answer(const std::string& completion) {
  std::string_view s = completion;
  // the last pair: the last opener before the last closer, closed by the first closer after it
  size_t close = s.rfind(kAnswerClose);
  size_t open = close == std::string_view::npos ? close : s.rfind(kAnswerOpen, close);
  if (open != std::string_view::npos) {
    size_t start = open + kAnswerOpen.size();
    close = s.find(kAnswerClose, start);
    std::string_view content = trim(s.substr(start, close - start));
    // "<answer>\boxed{X}</answer>" answers X
    if (content.starts_with("\\boxed{") && match_brace(content, 6) == content.size())
      content = content.substr(7, content.size() - 8);
    return non_empty(content);
  }
  if (auto boxed = last_boxed(s)) return non_empty(*boxed);
  return std::nullopt;
}

bool format_ok(const std::string& completion) {
  std::string_view s = completion;
  size_t i = skip_space(s, 0);
  // one block: open tag at i, content without tags, close tag; returns the content or nullopt
  auto block = [&](std::string_view open, std::string_view close) -> std::optional<std::string_view> {
    if (s.substr(i, open.size()) != open) return std::nullopt;
    size_t start = i + open.size();
    size_t end = s.find(close, start);
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view content = s.substr(start, end - start);
    if (has_tag(content)) return std::nullopt;
    i = skip_space(s, end + close.size());
    return content;
  };
  if (!block(kThinkOpen, kThinkClose)) return false;
  auto answer = block(kAnswerOpen, kAnswerClose);
  return answer && !trim(*answer).empty() && i == s.size();
}

int unicode_digit_value(char32_t cp) {
  if (cp >= '0' && cp <= '9') return int(cp - '0');
  if (cp < 0x80 || unicode::category(cp) != unicode::Nd) return -1;
  // Unicode encodes every set of decimal digits as a contiguous run 0..9 (adjacent sets in runs of 10s)
  int k = 0;
  while (k < 100 && unicode::category(cp - char32_t(k) - 1) == unicode::Nd) k++;
  return k % 10;
}

std::optional<long long> parse_integer(std::string_view s) {
  s = trim(s);
  bool negative = false;
  if (s.starts_with("+") || s.starts_with("-")) {
    negative = s[0] == '-';
    s.remove_prefix(1);
  } else if (s.starts_with("\u2212")) {
    negative = true;
    s.remove_prefix(3);
  }
  unsigned __int128 value = 0;
  int digits = 0, group = 0;  // digits in all, and since the last separator
  bool grouped = false;
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    i += char_at(s, i, cp);
    if (cp == ',' || cp == 0xFF0C) {  // thousands separator (ASCII or fullwidth comma)
      // first group 1-3 digits, every later one exactly 3
      if (group == 0 || group > 3 || (grouped && group != 3)) return std::nullopt;
      grouped = true;
      group = 0;
      continue;
    }
    int d = unicode_digit_value(cp);
    if (d < 0) return std::nullopt;
    value = value * 10 + unsigned(d);
    if (++digits > 20) return std::nullopt;
    group++;
  }
  if (digits == 0 || (grouped && group != 3)) return std::nullopt;
  constexpr unsigned __int128 kMax = (unsigned __int128)1 << 63;  // |LLONG_MIN|
  if (value > kMax || (value == kMax && !negative)) return std::nullopt;
  return negative ? (long long)(-(__int128)value) : (long long)value;
}

namespace {

// Exact rational; nullopt arithmetic results mean overflow or division by zero.
struct Rational {
  __int128 num = 0, den = 1;
};
constexpr __int128 kLimit = (__int128)1 << 62;

std::optional<Rational> normalise(__int128 num, __int128 den) {
  if (den == 0) return std::nullopt;
  if (den < 0) num = -num, den = -den;
  __int128 a = num < 0 ? -num : num, b = den;
  while (b) a %= b, std::swap(a, b);
  if (a > 1) num /= a, den /= a;
  if (num >= kLimit || num <= -kLimit || den >= kLimit) return std::nullopt;
  return Rational{num, den};
}

std::optional<Rational> apply(char op, Rational x, Rational y) {
  switch (op) {
    case '+': return normalise(x.num * y.den + y.num * x.den, x.den * y.den);
    case '-': return normalise(x.num * y.den - y.num * x.den, x.den * y.den);
    case '*': return normalise(x.num * y.num, x.den * y.den);
    default: return normalise(x.num * y.den, x.den * y.num);  // '/': zero divisor gives den 0
  }
}

// Tokens of a countdown expression: numbers, single-char operators ( ) + - * / =.
struct Token {
  char kind;  // 'n' number, else the operator
  long long value = 0;
};

std::optional<std::vector<Token>> lex(std::string_view s) {
  std::vector<Token> out;
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    size_t len = char_at(s, i, cp);
    if (unicode::is_white_space(cp)) {
      i += len;
      continue;
    }
    if (unicode_digit_value(cp) >= 0) {
      size_t j = i;
      std::string digits;
      while (j < s.size()) {
        char32_t c;
        size_t l = char_at(s, j, c);
        if (unicode_digit_value(c) < 0) break;
        digits.append(s.substr(j, l));
        j += l;
      }
      auto v = parse_integer(digits);
      if (!v) return std::nullopt;
      out.push_back({'n', *v});
      i = j;
      continue;
    }
    char op = 0;
    if (cp < 0x80 && std::string_view("+-*/()=").find(char(cp)) != std::string_view::npos) op = char(cp);
    if (cp == 0x00D7) op = '*';  // ×
    if (cp == 0x00F7) op = '/';  // ÷
    if (cp == 0x2212) op = '-';  // minus sign
    if (!op) return std::nullopt;
    out.push_back({op});
    i += len;
  }
  return out;
}

// Recursive descent over + - (lowest), * /, then numbers and parentheses; no unary signs.
class Parser {
 public:
  Parser(const std::vector<Token>& t, size_t end) : t_(t), end_(end) {}
  std::optional<Rational> parse(std::vector<long long>& used) {
    used_ = &used;
    auto v = expr(0);
    if (!v || pos_ != end_) return std::nullopt;
    return v;
  }

 private:
  std::optional<Rational> expr(int depth) { return binary(depth, "+-", &Parser::term); }
  std::optional<Rational> term(int depth) { return binary(depth, "*/", &Parser::factor); }
  std::optional<Rational> binary(int depth, std::string_view ops, std::optional<Rational> (Parser::*next)(int)) {
    auto left = (this->*next)(depth);
    while (left && pos_ < end_ && ops.find(t_[pos_].kind) != std::string_view::npos) {
      char op = t_[pos_++].kind;
      auto right = (this->*next)(depth);
      if (!right) return std::nullopt;
      left = apply(op, *left, *right);
    }
    return left;
  }
  std::optional<Rational> factor(int depth) {
    if (pos_ >= end_ || depth > 200) return std::nullopt;
    const Token& tk = t_[pos_++];
    if (tk.kind == 'n') {
      used_->push_back(tk.value);
      return Rational{tk.value, 1};
    }
    if (tk.kind != '(') return std::nullopt;
    auto v = expr(depth + 1);
    if (!v || pos_ >= end_ || t_[pos_].kind != ')') return std::nullopt;
    pos_++;
    return v;
  }

  const std::vector<Token>& t_;
  size_t end_, pos_ = 0;
  std::vector<long long>* used_ = nullptr;
};

}  // namespace

std::optional<bool> countdown_check(const std::string& expression, const std::vector<long long>& numbers,
                                    long long target) {
  auto tokens = lex(expression);
  if (!tokens || tokens->empty()) return std::nullopt;
  // an optional trailing "= N"
  size_t end = tokens->size();
  bool states_target = true;
  auto eq = std::find_if(tokens->begin(), tokens->end(), [](const Token& t) { return t.kind == '='; });
  if (eq != tokens->end()) {
    end = size_t(eq - tokens->begin());
    if (end + 2 != tokens->size() || (*tokens)[end + 1].kind != 'n') return std::nullopt;
    states_target = (*tokens)[end + 1].value == target;
  }
  std::vector<long long> used;
  auto value = Parser(*tokens, end).parse(used);
  if (!value) return std::nullopt;
  std::vector<long long> given = numbers;
  std::sort(used.begin(), used.end());
  std::sort(given.begin(), given.end());
  return states_target && used == given && value->den == 1 && value->num == target;
}

}  // namespace dseek
