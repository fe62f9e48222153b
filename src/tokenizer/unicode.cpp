#include "tokenizer/unicode.h"

#include <algorithm>
#include <unordered_map>
#include <vector>

namespace dseek::unicode {

namespace tables {
extern const uint32_t kLowercase[][3];
extern const int kLowercaseCount;
extern const uint32_t kCombiningClass[][2];
extern const int kCombiningClassCount;
extern const uint32_t kNfd[][3];
extern const int kNfdCount;
extern const uint32_t kNfdData[];
extern const uint32_t kNfkd[][3];
extern const int kNfkdCount;
extern const uint32_t kNfkdData[];
extern const uint32_t kCompositions[][3];
extern const int kCompositionCount;
}  // namespace tables

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

std::u32string to_utf32(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    i += decode_utf8(s.data(), s.size(), i, cp);
    out += cp;
  }
  return out;
}

std::string to_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

namespace {
// Length of the valid prefix of the sequence starting at s[i] (the "maximal subpart" of Unicode's U+FFFD
// substitution practice) and whether it is a complete character.
struct SequenceCheck {
  size_t length;
  bool complete;
};
SequenceCheck check_sequence(std::string_view s, size_t i) {
  uint8_t b0 = uint8_t(s[i]);
  if (b0 < 0x80) return {1, true};
  size_t need;
  uint8_t lo = 0x80, hi = 0xBF;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return {1, false};
  }
  size_t k = 1;
  for (; k <= need && i + k < s.size(); ++k) {
    uint8_t b = uint8_t(s[i + k]);
    if (b < lo || b > hi) return {k, false};
    lo = 0x80, hi = 0xBF;
  }
  return {k, k == need + 1};
}
}  // namespace

size_t find_invalid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (uint8_t(s[i]) < 0x80) {
      ++i;
      continue;
    }
    SequenceCheck c = check_sequence(s, i);
    if (!c.complete) return i;
    i += c.length;
  }
  return std::string_view::npos;
}

std::string sanitize_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    SequenceCheck c = check_sequence(s, i);
    if (c.complete) {
      out.append(s.data() + i, c.length);
    } else {
      out += "\xEF\xBF\xBD";
    }
    i += c.length;
  }
  return out;
}

size_t complete_utf8_prefix(std::string_view s) {
  // Only the last (at most 3) bytes can start an unfinished character.
  size_t start = s.size() > 3 ? s.size() - 3 : 0;
  for (size_t i = start; i < s.size(); ++i) {
    uint8_t b = uint8_t(s[i]);
    if (b < 0x80 || (b & 0xC0) == 0x80) continue;
    SequenceCheck c = check_sequence(s, i);
    // A valid prefix that reaches the end of `s` may still be completed by later bytes.
    if (!c.complete && i + c.length == s.size() && c.length > 0 && (b >= 0xC2 && b <= 0xF4)) return i;
  }
  return s.size();
}

// ---- Lowercase ----

namespace {
bool lookup_lower(char32_t cp, char32_t& a, char32_t& b) {
  const auto* begin = tables::kLowercase;
  const auto* end = tables::kLowercase + tables::kLowercaseCount;
  const auto* it = std::lower_bound(begin, end, cp, [](const uint32_t* row, char32_t v) { return row[0] < v; });
  if (it == end || (*it)[0] != cp) return false;
  a = (*it)[1];
  b = (*it)[2];
  return true;
}
}  // namespace

std::string to_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    i += decode_utf8(s.data(), s.size(), i, cp);
    if (cp < 0x80) {
      out += (cp >= 'A' && cp <= 'Z') ? char(cp + 32) : char(cp);
      continue;
    }
    char32_t a, b;
    if (lookup_lower(cp, a, b)) {
      append_utf8(out, a);
      if (b) append_utf8(out, b);
    } else {
      append_utf8(out, cp);
    }
  }
  return out;
}

// ---- Normalization (UAX #15) ----

namespace {
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

struct NormalizationData {
  std::unordered_map<char32_t, uint8_t> ccc;
  std::unordered_map<char32_t, std::pair<const uint32_t*, uint32_t>> nfd, nfkd;
  std::unordered_map<uint64_t, char32_t> compose;
  NormalizationData() {
    for (int i = 0; i < tables::kCombiningClassCount; ++i)
      ccc[tables::kCombiningClass[i][0]] = uint8_t(tables::kCombiningClass[i][1]);
    for (int i = 0; i < tables::kNfdCount; ++i)
      nfd[tables::kNfd[i][0]] = {tables::kNfdData + tables::kNfd[i][1], tables::kNfd[i][2]};
    for (int i = 0; i < tables::kNfkdCount; ++i)
      nfkd[tables::kNfkd[i][0]] = {tables::kNfkdData + tables::kNfkd[i][1], tables::kNfkd[i][2]};
    for (int i = 0; i < tables::kCompositionCount; ++i)
      compose[uint64_t(tables::kCompositions[i][0]) << 21 | tables::kCompositions[i][1]] = tables::kCompositions[i][2];
  }
  uint8_t combining_class(char32_t cp) const {
    if (cp < 0x300) return 0;
    auto it = ccc.find(cp);
    return it == ccc.end() ? 0 : it->second;
  }
};
const NormalizationData& data() {
  static const NormalizationData d;
  return d;
}

void decompose(char32_t cp, bool compat, std::u32string& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    int s = int(cp - kSBase);
    out += kLBase + s / kNCount;
    out += kVBase + (s % kNCount) / kTCount;
    if (s % kTCount) out += kTBase + s % kTCount;
    return;
  }
  if (cp < 0xA0) {
    out += cp;
    return;
  }
  const auto& map = compat ? data().nfkd : data().nfd;
  auto it = map.find(cp);
  if (it == map.end()) {
    out += cp;
  } else {
    out.append(reinterpret_cast<const char32_t*>(it->second.first), it->second.second);
  }
}

char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = data().compose.find(uint64_t(a) << 21 | b);
  return it == data().compose.end() ? 0 : it->second;
}
}  // namespace

std::string normalize(std::string_view s, NormalForm form) {
  bool ascii = std::all_of(s.begin(), s.end(), [](char c) { return uint8_t(c) < 0x80; });
  if (ascii) return std::string(s);
  const NormalizationData& d = data();
  bool compat = form == NormalForm::NFKC || form == NormalForm::NFKD;
  std::u32string buf;
  buf.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    char32_t cp;
    i += decode_utf8(s.data(), s.size(), i, cp);
    decompose(cp, compat, buf);
  }
  // Canonical ordering: stable sort of each run of non-starters by combining class.
  for (size_t i = 1; i < buf.size(); ++i) {
    uint8_t c = d.combining_class(buf[i]);
    if (c == 0) continue;
    size_t j = i;
    while (j > 0) {
      uint8_t p = d.combining_class(buf[j - 1]);
      if (p == 0 || p <= c) break;
      std::swap(buf[j - 1], buf[j]);
      --j;
    }
  }
  if (form == NormalForm::NFC || form == NormalForm::NFKC) {
    std::u32string out;
    out.reserve(buf.size());
    size_t starter = std::u32string::npos;
    int last_class = 0;  // class of the last character kept
    for (char32_t ch : buf) {
      int cls = d.combining_class(ch);
      // ch combines with the last starter unless a kept character in between has class 0 or >= its own.
      if (starter != std::u32string::npos && (out.size() == starter + 1 || (last_class != 0 && last_class < cls))) {
        if (char32_t comp = compose_pair(out[starter], ch)) {
          out[starter] = comp;
          continue;
        }
      }
      if (cls == 0) starter = out.size();
      last_class = cls;
      out += ch;
    }
    buf.swap(out);
  }
  return to_utf8(buf);
}

}  // namespace dseek::unicode
