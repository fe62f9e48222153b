#include "inference/json_constraint.h"

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace dseek {
namespace {

constexpr int kMaxMagnitude = 308;  // numbers stay below 10^308 in magnitude (a double's maximum is 1.8e308)
constexpr const char* kLiterals[] = {"true", "false", "null"};
constexpr uint8_t kLiteralLength[] = {4, 5, 4};

bool is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The first `digits` hex digits `code` of a \u escape can only end as a high surrogate (D800..DBFF).
bool makes_high_surrogate(uint16_t code, int digits) {
  if (digits < 2) return false;
  const int top = code >> 4 * (digits - 2);  // the first two digits
  return top >= 0xD8 && top <= 0xDB;
}

}  // namespace

JsonPrefix::JsonPrefix(int max_whitespace) : max_ws_(uint8_t(std::clamp(max_whitespace, 0, 255))) {}

bool JsonPrefix::push(unsigned char c) {
  JsonPrefix next = *this;
  if (!next.step(c)) return false;
  *this = next;
  return true;
}

bool JsonPrefix::open(bool array) {
  if (depth_ >= kMaxDepth) return false;
  const uint64_t bit = uint64_t(1) << depth_;
  arrays_ = array ? arrays_ | bit : arrays_ & ~bit;
  depth_++;
  mode_ = array ? Mode::kValueOrClose : Mode::kKeyOrClose;
  return true;
}

bool JsonPrefix::close(unsigned char c) {
  const bool array = (arrays_ >> (depth_ - 1)) & 1;
  if (c != (array ? ']' : '}')) return false;
  depth_--;
  end_value();
  return true;
}

bool JsonPrefix::begin_value(unsigned char c) {
  switch (c) {
    case '{': return open(false);
    case '[': return open(true);
    case '"': mode_ = Mode::kString; key_ = false; return true;
    case '-': mode_ = Mode::kMinus, int_digits_ = 0, exp_ = 0; return true;
    case '0': mode_ = Mode::kZero, int_digits_ = 1, exp_ = 0; return true;
    case 't': case 'f': case 'n':
      mode_ = Mode::kLiteral;
      lit_ = c == 't' ? 0 : c == 'f' ? 1 : 2;
      n_ = 1;
      return true;
    default:
      if (c >= '1' && c <= '9') { mode_ = Mode::kInt, int_digits_ = 1, exp_ = 0; return true; }
      return false;
  }
}

bool JsonPrefix::step(unsigned char c) {
  switch (mode_) {
    case Mode::kString:
      if (c == '"') {
        if (key_) mode_ = Mode::kColon; else end_value();
        return true;
      }
      if (c == '\\') { mode_ = Mode::kEscape; return true; }
      if (c < 0x80) return c >= 0x20;
      // UTF-8 lead byte: the number of continuation bytes and the range of the first one (Unicode table 3-7, as in
      // RFC 3629: this rules out overlong forms, surrogates and code points above U+10FFFF).
      lo_ = 0x80, hi_ = 0xBF;
      if (c >= 0xC2 && c <= 0xDF) n_ = 1;
      else if (c >= 0xE0 && c <= 0xEF) n_ = 2, lo_ = c == 0xE0 ? 0xA0 : 0x80, hi_ = c == 0xED ? 0x9F : 0xBF;
      else if (c >= 0xF0 && c <= 0xF4) n_ = 3, lo_ = c == 0xF0 ? 0x90 : 0x80, hi_ = c == 0xF4 ? 0x8F : 0xBF;
      else return false;  // a continuation byte, 0xC0, 0xC1 or 0xF5..0xFF
      mode_ = Mode::kUtf8;
      return true;
    case Mode::kUtf8:
      if (c < lo_ || c > hi_) return false;
      lo_ = 0x80, hi_ = 0xBF;
      if (--n_ == 0) mode_ = Mode::kString;
      return true;
    case Mode::kEscape:
      switch (c) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
          mode_ = Mode::kString;
          return true;
        case 'u':
          mode_ = Mode::kHex, n_ = 0, code_ = 0;
          return true;
        default:
          return false;
      }
    case Mode::kHex: {
      const int d = hex_value(c);
      if (d < 0) return false;
      if (n_ == 1 && code_ == 0xD && d >= 0xC) return false;  // DC00..DFFF: a low surrogate with no high one
      code_ = uint16_t(code_ << 4 | d);
      if (++n_ == 4) mode_ = code_ >= 0xD800 && code_ <= 0xDBFF ? Mode::kLowBackslash : Mode::kString;
      return true;
    }
    case Mode::kLowBackslash:
      if (c != '\\') return false;
      mode_ = Mode::kLowU;
      return true;
    case Mode::kLowU:
      if (c != 'u') return false;
      mode_ = Mode::kLowHex, n_ = 0;
      return true;
    case Mode::kLowHex: {
      const int d = hex_value(c);
      if (d < 0 || (n_ == 0 && d != 0xD) || (n_ == 1 && d < 0xC)) return false;  // DC00..DFFF
      if (++n_ == 4) mode_ = Mode::kString;
      return true;
    }
    case Mode::kLiteral:
      if (c != uint8_t(kLiterals[lit_][n_])) return false;
      if (++n_ == kLiteralLength[lit_]) end_value();
      return true;
    case Mode::kDone:
      return false;
    default:
      break;
  }

  // Numbers: a byte that continues the number, or one that ends it and is then read as after any value.
  // A number whose integer part has k digits and whose exponent is e is below 10^(k + e) in magnitude; keeping
  // k + e <= kMaxMagnitude keeps it a finite double (strict parsers reject numbers that overflow one).
  switch (mode_) {
    case Mode::kMinus:
      if (c == '0') { mode_ = Mode::kZero, int_digits_ = 1; return true; }
      if (c >= '1' && c <= '9') { mode_ = Mode::kInt, int_digits_ = 1; return true; }
      return false;
    case Mode::kZero:
    case Mode::kInt:
      if (mode_ == Mode::kInt && is_digit(c)) return ++int_digits_ <= kMaxMagnitude;
      if (c == '.') { mode_ = Mode::kDot; return true; }
      if (c == 'e' || c == 'E') { mode_ = Mode::kExp, exp_negative_ = false; return true; }
      mode_ = Mode::kAfterValue;  // numbers only occur inside containers
      break;
    case Mode::kDot:
      if (!is_digit(c)) return false;
      mode_ = Mode::kFrac;
      return true;
    case Mode::kFrac:
      if (is_digit(c)) return true;
      if (c == 'e' || c == 'E') { mode_ = Mode::kExp, exp_negative_ = false; return true; }
      mode_ = Mode::kAfterValue;
      break;
    case Mode::kExp:
      if (c == '+' || c == '-') { mode_ = Mode::kExpSign, exp_negative_ = c == '-'; return true; }
      [[fallthrough]];
    case Mode::kExpSign:
    case Mode::kExpDigits:
      if (is_digit(c)) {
        mode_ = Mode::kExpDigits;
        if (exp_negative_) return true;  // small numbers only round to 0
        exp_ = uint16_t(exp_ * 10 + (c - '0'));  // no overflow: exp_ <= kMaxMagnitude before
        return int_digits_ + exp_ <= kMaxMagnitude;
      }
      if (mode_ != Mode::kExpDigits) return false;
      mode_ = Mode::kAfterValue;
      break;
    default:
      break;
  }

  // Structure, between tokens (the number states have all been left above).
  if (is_ws(c)) {
    if (ws_ >= max_ws_) return false;
    ws_++;
    return true;
  }
  ws_ = 0;
  switch (mode_) {
    case Mode::kStart:
      return c == '{' && open(false);
    case Mode::kKeyOrClose:
      if (c == '}') return close(c);
      [[fallthrough]];
    case Mode::kKey:
      if (c != '"') return false;
      mode_ = Mode::kString, key_ = true;
      return true;
    case Mode::kColon:
      if (c != ':') return false;
      mode_ = Mode::kValue;
      return true;
    case Mode::kValueOrClose:
      if (c == ']') return close(c);
      [[fallthrough]];
    case Mode::kValue:
      return begin_value(c);
    case Mode::kAfterValue:
      if (c == ',') {
        mode_ = (arrays_ >> (depth_ - 1)) & 1 ? Mode::kValue : Mode::kKey;
        return true;
      }
      return (c == '}' || c == ']') && close(c);
    default:
      return false;
  }
}

// closing() is built from pieces: what finishes the current token, then (after a key) ":0", then one closing
// bracket per open container. Each piece is the shortest possible, and they are independent, so the sum is too.
size_t JsonPrefix::closing_length() const {
  size_t n = depth_;
  switch (mode_) {
    case Mode::kStart: return 2;  // {}
    case Mode::kDone: return 0;
    case Mode::kKeyOrClose: case Mode::kValueOrClose: case Mode::kAfterValue: return n;
    case Mode::kZero: case Mode::kInt: case Mode::kFrac: case Mode::kExpDigits: return n;
    case Mode::kKey: return n + 4;  // "":0
    case Mode::kColon: return n + 2;  // :0
    case Mode::kValue: case Mode::kMinus: case Mode::kDot: case Mode::kExp: case Mode::kExpSign: return n + 1;  // 0
    case Mode::kLiteral: return n + kLiteralLength[lit_] - n_;
    default: break;
  }
  // In a string: finish the escape or character, then the quote, then ":0" after a key.
  n += key_ ? 3 : 1;
  switch (mode_) {
    case Mode::kUtf8: return n + n_;
    case Mode::kEscape: return n + 1;  // \" is the shortest escape
    case Mode::kHex: {
      // The digits so far may already make a high surrogate, which must be followed by \uDC00.
      return n + 4 - n_ + (makes_high_surrogate(code_, n_) ? 6 : 0);
    }
    case Mode::kLowBackslash: return n + 6;
    case Mode::kLowU: return n + 5;
    case Mode::kLowHex: return n + 4 - n_;
    default: return n;  // kString
  }
}

std::string JsonPrefix::closing() const {
  std::string s;
  switch (mode_) {
    case Mode::kStart: return "{}";
    case Mode::kDone: return s;
    case Mode::kKey: s = "\"\":0"; break;
    case Mode::kColon: s = ":0"; break;
    case Mode::kValue: case Mode::kMinus: case Mode::kDot: case Mode::kExp: case Mode::kExpSign: s = "0"; break;
    case Mode::kLiteral: s = kLiterals[lit_] + n_; break;
    case Mode::kString: case Mode::kEscape: case Mode::kHex: case Mode::kLowBackslash: case Mode::kLowU:
    case Mode::kLowHex: case Mode::kUtf8:
      switch (mode_) {
        case Mode::kUtf8:
          s += char(lo_);
          s.append(n_ - 1, char(0x80));
          break;
        case Mode::kEscape: s = "\""; break;
        case Mode::kHex:
          s.append(4 - n_, '0');
          if (makes_high_surrogate(code_, n_)) s += "\\uDC00";
          break;
        case Mode::kLowBackslash: s = "\\uDC00"; break;
        case Mode::kLowU: s = "uDC00"; break;
        case Mode::kLowHex: s = std::string("DC00").substr(n_); break;
        default: break;
      }
      s += key_ ? "\":0" : "\"";
      break;
    default: break;  // kKeyOrClose, kValueOrClose, kAfterValue, and the number states that are whole numbers
  }
  for (int d = depth_ - 1; d >= 0; d--) s += (arrays_ >> d) & 1 ? ']' : '}';
  return s;
}

// ---------------------------------------------------------------------------------------------------------------

struct JsonConstraint::Vocab {
  static constexpr uint8_t kEnd = 1;    // an end id
  static constexpr uint8_t kPlain = 2;  // non-empty, every byte in 0x20..0x7E and neither '"' nor '\'
  std::vector<unsigned char> bytes;     // every token's bytes, back to back
  std::vector<uint32_t> offsets;        // token id's bytes are [offsets[id], offsets[id + 1])
  std::vector<uint8_t> flags;           // per id, at least as many as tokens and end ids
  std::vector<int32_t> end_ids;
  bool budget_guaranteed = true;
};

JsonConstraint::JsonConstraint(std::shared_ptr<const std::vector<std::string>> token_bytes,
                               std::vector<int32_t> end_ids) {
  DSEEK_CHECK(token_bytes, "json constraint: no vocabulary");
  auto v = std::make_shared<Vocab>();
  const auto& tokens = *token_bytes;
  size_t total = 0;
  for (const auto& t : tokens) total += t.size();
  DSEEK_CHECK(total < std::numeric_limits<uint32_t>::max(), "json constraint: vocabulary too large ({} bytes)",
              total);
  v->bytes.reserve(total);
  v->offsets.reserve(tokens.size() + 1);
  v->offsets.push_back(0);
  size_t n_flags = tokens.size();
  for (int32_t e : end_ids) {
    DSEEK_CHECK(e >= 0, "json constraint: negative end id {}", e);
    n_flags = std::max(n_flags, size_t(e) + 1);
  }
  v->flags.assign(n_flags, 0);
  for (int32_t e : end_ids) v->flags[size_t(e)] |= Vocab::kEnd;
  bool single[256] = {};  // byte b is a token of its own (not an end id)
  for (size_t id = 0; id < tokens.size(); id++) {
    const std::string& t = tokens[id];
    v->bytes.insert(v->bytes.end(), t.begin(), t.end());
    v->offsets.push_back(uint32_t(v->bytes.size()));
    bool plain = !t.empty();
    for (char ch : t) {
      const unsigned char c = ch;
      plain = plain && c >= 0x20 && c <= 0x7E && c != '"' && c != '\\';
    }
    if (plain) v->flags[id] |= Vocab::kPlain;
    if (t.size() == 1 && !(v->flags[id] & Vocab::kEnd)) single[(unsigned char)t[0]] = true;
  }
  // Every byte closing() may produce (see JsonPrefix::closing).
  static const std::string kClosingBytes = std::string("{}]\":0\\uDCtruefalsn") + "\x80\x90\xA0";
  for (char ch : kClosingBytes) v->budget_guaranteed = v->budget_guaranteed && single[(unsigned char)ch];
  v->end_ids = std::move(end_ids);
  vocab_ = std::move(v);
}

bool JsonConstraint::budget_guaranteed() const { return vocab_->budget_guaranteed; }

void JsonConstraint::mask(float* logits, int64_t vocab, int64_t remaining) const {
  constexpr float kMasked = -std::numeric_limits<float>::infinity();
  const Vocab& v = *vocab_;
  const int64_t n_tokens = int64_t(v.offsets.size()) - 1;
  const int64_t n_flags = int64_t(v.flags.size());
  if (state_.complete()) {
    for (int64_t id = 0; id < vocab; id++)
      if (id >= n_flags || !(v.flags[size_t(id)] & Vocab::kEnd)) logits[id] = kMasked;
    return;
  }
  const int64_t budget = remaining - 1;  // tokens left after this one; closing() needs at most one per byte
  // Fast path: inside a string, a token of plain characters leaves the state (and its closing) as it is.
  const bool in_plain = state_.in_plain_string();
  const bool plain_fits = int64_t(state_.closing_length()) <= budget;
  bool any = false;
  for (int64_t id = 0; id < vocab; id++) {
    const uint8_t flags = id < n_flags ? v.flags[size_t(id)] : 0;
    if (flags & Vocab::kEnd) continue;  // decided below
    bool ok = false;
    if (id < n_tokens) {
      if (in_plain && (flags & Vocab::kPlain)) {
        ok = plain_fits;
      } else {
        const unsigned char* p = v.bytes.data() + v.offsets[size_t(id)];
        const unsigned char* end = v.bytes.data() + v.offsets[size_t(id) + 1];
        if (p != end) {
          JsonPrefix s = state_;  // step() may garble its state on failure: work on a copy
          while (p != end && s.step(*p)) p++;
          ok = p == end && int64_t(s.closing_length()) <= budget;
        }
      }
    }
    if (ok) any = true;
    else logits[id] = kMasked;
  }
  if (any)
    for (int32_t e : v.end_ids)
      if (e < vocab) logits[e] = kMasked;
}

void JsonConstraint::accept(int32_t token) {
  const Vocab& v = *vocab_;
  if (token >= 0 && size_t(token) < v.flags.size() && (v.flags[size_t(token)] & Vocab::kEnd)) return;
  DSEEK_CHECK(token >= 0 && size_t(token) + 1 < v.offsets.size(), "json constraint: token {} is out of range",
              token);
  const uint32_t begin = v.offsets[size_t(token)], end = v.offsets[size_t(token) + 1];
  DSEEK_CHECK(begin != end, "json constraint: token {} has no bytes (a special token) and cannot be JSON", token);
  JsonPrefix s = state_;
  for (uint32_t i = begin; i < end; i++)
    DSEEK_CHECK(s.step(v.bytes[i]), "json constraint: token {} cannot continue the JSON text", token);
  state_ = s;
}

}  // namespace dseek
