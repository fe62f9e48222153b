// Unicode for the tokenizer: UTF-8 coding, general categories and properties (Unicode 16.0, generated into
// unicode_tables.cpp), lowercase mapping and the NFC/NFD/NFKC/NFKD normalization forms.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dseek::unicode {

// General categories; the order matches the generated tables.
enum Category : uint8_t {
  Lu, Ll, Lt, Lm, Lo, Mn, Mc, Me, Nd, Nl, No, Pc, Pd, Ps, Pe, Pi, Pf, Po,
  Sm, Sc, Sk, So, Zs, Zl, Zp, Cc, Cf, Cs, Co, Cn
};

// Masks over categories: (1u << category) & mask.
constexpr uint32_t kLetter = (1u << Lu) | (1u << Ll) | (1u << Lt) | (1u << Lm) | (1u << Lo);
constexpr uint32_t kMark = (1u << Mn) | (1u << Mc) | (1u << Me);
constexpr uint32_t kNumber = (1u << Nd) | (1u << Nl) | (1u << No);
constexpr uint32_t kPunct = (1u << Pc) | (1u << Pd) | (1u << Ps) | (1u << Pe) | (1u << Pi) | (1u << Pf) | (1u << Po);
constexpr uint32_t kSymbol = (1u << Sm) | (1u << Sc) | (1u << Sk) | (1u << So);
constexpr uint32_t kSeparator = (1u << Zs) | (1u << Zl) | (1u << Zp);
constexpr uint32_t kOther = (1u << Cc) | (1u << Cf) | (1u << Cs) | (1u << Co) | (1u << Cn);

// Property bits stored above the 5 category bits.
constexpr uint16_t kWhiteSpace = 1 << 5, kAlphabetic = 1 << 6, kCased = 1 << 7, kCaseIgnorable = 1 << 8;

namespace tables {
extern const uint16_t kStage1[];
extern const uint16_t kStage2[];
}  // namespace tables

// Category and property bits of a code point (out-of-range values are unassigned).
inline uint16_t properties(char32_t cp) {
  if (cp >= 0x110000) return Cn;
  return tables::kStage2[tables::kStage1[cp >> 7] * 128 + (cp & 127)];
}
inline Category category(char32_t cp) { return Category(properties(cp) & 31); }
inline uint32_t category_bit(char32_t cp) { return 1u << (properties(cp) & 31); }
inline bool in(char32_t cp, uint32_t mask) { return (category_bit(cp) & mask) != 0; }
inline bool is_white_space(char32_t cp) { return (properties(cp) & kWhiteSpace) != 0; }
// Rust's char::is_alphanumeric: Alphabetic or a number (Nd, Nl, No).
inline bool is_alphanumeric(char32_t cp) {
  uint16_t p = properties(cp);
  return (p & kAlphabetic) || ((1u << (p & 31)) & kNumber);
}
// \w of Rust's regex crate: Alphabetic, M, Nd, Pc, Join_Control.
inline bool is_word_char(char32_t cp) {
  uint16_t p = properties(cp);
  return (p & kAlphabetic) || ((1u << (p & 31)) & (kMark | (1u << Nd) | (1u << Pc))) || cp == 0x200C || cp == 0x200D;
}

// Decodes the UTF-8 character at s[i] (i < n); returns its length. Invalid bytes decode as U+FFFD, length 1.
inline size_t decode_utf8(const char* s, size_t n, size_t i, char32_t& cp) {
  uint8_t b0 = uint8_t(s[i]);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  auto cont = [&](size_t k) { return i + k < n && (uint8_t(s[i + k]) & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 < 0xE0 && cont(1)) {
    cp = char32_t(b0 & 0x1F) << 6 | (uint8_t(s[i + 1]) & 0x3F);
    return 2;
  }
  if (b0 >= 0xE0 && b0 < 0xF0 && cont(1) && cont(2)) {
    char32_t c = char32_t(b0 & 0x0F) << 12 | char32_t(uint8_t(s[i + 1]) & 0x3F) << 6 | (uint8_t(s[i + 2]) & 0x3F);
    if (c >= 0x800 && (c < 0xD800 || c > 0xDFFF)) {
      cp = c;
      return 3;
    }
  } else if (b0 >= 0xF0 && b0 < 0xF5 && cont(1) && cont(2) && cont(3)) {
    char32_t c = char32_t(b0 & 0x07) << 18 | char32_t(uint8_t(s[i + 1]) & 0x3F) << 12 |
                 char32_t(uint8_t(s[i + 2]) & 0x3F) << 6 | (uint8_t(s[i + 3]) & 0x3F);
    if (c >= 0x10000 && c < 0x110000) {
      cp = c;
      return 4;
    }
  }
  cp = 0xFFFD;
  return 1;
}

void append_utf8(std::string& out, char32_t cp);
std::u32string to_utf32(std::string_view s);
std::string to_utf8(std::u32string_view s);

// Byte offset of the first invalid UTF-8 sequence, or npos when `s` is valid.
size_t find_invalid_utf8(std::string_view s);
// `s` with every invalid sequence replaced by U+FFFD (as Rust's String::from_utf8_lossy does).
std::string sanitize_utf8(std::string_view s);
// Length of the longest prefix of `s` that ends on a character boundary and holds no incomplete trailing
// sequence (invalid bytes count as complete characters).
size_t complete_utf8_prefix(std::string_view s);

// Lowercase, character by character (Rust's char::to_lowercase: full mappings, no final-sigma context).
std::string to_lower(std::string_view s);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
std::string normalize(std::string_view s, NormalForm form);

}  // namespace dseek::unicode
