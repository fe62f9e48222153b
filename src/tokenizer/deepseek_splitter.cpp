#include "tokenizer/deepseek_splitter.h"

#include "tokenizer/unicode.h"

namespace dseek::tok {

nlohmann::json deepseek_v3_pre_tokenizer_json() {
  nlohmann::json steps = nlohmann::json::array();
  for (const char* p : kDeepSeekV3Patterns)
    steps.push_back({{"type", "Split"}, {"pattern", {{"Regex", p}}}, {"behavior", "Isolated"}, {"invert", false}});
  steps.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}});
  return {{"type", "Sequence"}, {"pretokenizers", steps}};
}

bool is_deepseek_v3_pre_tokenizer(const nlohmann::json& j) {
  if (!j.is_object() || j.value("type", "") != "Sequence" || !j.contains("pretokenizers")) return false;
  const auto& list = j["pretokenizers"];
  if (!list.is_array() || list.size() != 4) return false;
  for (int i = 0; i < 3; ++i) {
    const auto& s = list[i];
    if (!s.is_object() || s.value("type", "") != "Split" || s.value("behavior", "") != "Isolated" ||
        s.value("invert", false) || !s.contains("pattern") || !s["pattern"].is_object() ||
        s["pattern"].value("Regex", "") != kDeepSeekV3Patterns[i])
      return false;
  }
  const auto& b = list[3];
  return b.is_object() && b.value("type", "") == "ByteLevel" && !b.value("add_prefix_space", true) &&
         !b.value("use_regex", true);
}

namespace {
// Character classes the three patterns test.
enum : uint16_t {
  kN = 1 << 0,           // \p{N}
  kL = 1 << 1,           // \p{L}
  kM = 1 << 2,           // \p{M}
  kPS = 1 << 3,          // \p{P} or \p{S}
  kWS = 1 << 4,          // \s (White_Space)
  kCRLF = 1 << 5,        // \r or \n
  kCJK = 1 << 6,         // U+4E00-9FA5, U+3040-309F, U+30A0-30FF
  kAsciiPunct = 1 << 7,  // [!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~]
  kAsciiAlpha = 1 << 8,  // [A-Za-z]
  kSpace = 1 << 9,       // U+0020
};

uint16_t classify(char32_t cp) {
  uint16_t p = unicode::properties(cp);
  uint32_t bit = 1u << (p & 31);
  uint16_t c = 0;
  if (bit & unicode::kNumber) c |= kN;
  if (bit & unicode::kLetter) c |= kL;
  if (bit & unicode::kMark) c |= kM;
  if (bit & (unicode::kPunct | unicode::kSymbol)) c |= kPS;
  if (p & unicode::kWhiteSpace) c |= kWS;
  if (cp == '\r' || cp == '\n') c |= kCRLF;
  if ((cp >= 0x4E00 && cp <= 0x9FA5) || (cp >= 0x3040 && cp <= 0x30FF)) c |= kCJK;
  if (cp < 0x80 && (bit & (unicode::kPunct | unicode::kSymbol))) c |= kAsciiPunct;
  if ((cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z')) c |= kAsciiAlpha;
  if (cp == ' ') c |= kSpace;
  return c;
}

struct AsciiClasses {
  uint16_t c[128];
  AsciiClasses() {
    for (int i = 0; i < 128; ++i) c[i] = classify(char32_t(i));
  }
};

// Characters of the current text: class and starting byte offset (one extra entry holds the end offset).
struct Chars {
  std::vector<uint16_t> cls;
  std::vector<uint32_t> off;
};

using Out = std::vector<std::pair<uint32_t, uint32_t>>;

// Length in characters of the match of the third pattern at `p` (0: none), with `e` as end of input.
inline size_t match_at(const uint16_t* cls, size_t p, size_t e) {
  uint16_t c0 = cls[p];
  uint16_t c1 = p + 1 < e ? cls[p + 1] : 0;
  size_t q;
  // [!"#...~][A-Za-z]+
  if ((c0 & kAsciiPunct) && (c1 & kAsciiAlpha)) {
    for (q = p + 2; q < e && (cls[q] & kAsciiAlpha); ++q) {
    }
    return q - p;
  }
  // [^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+
  if (!(c0 & (kCRLF | kL | kPS)) && (c1 & (kL | kM))) {
    for (q = p + 2; q < e && (cls[q] & (kL | kM)); ++q) {
    }
    return q - p;
  }
  if (c0 & (kL | kM)) {
    for (q = p + 1; q < e && (cls[q] & (kL | kM)); ++q) {
    }
    return q - p;
  }
  // ' ?[\p{P}\p{S}]+[\r\n]*'
  if (((c0 & kSpace) && (c1 & kPS)) || (c0 & kPS)) {
    for (q = (c0 & kSpace) ? p + 2 : p + 1; q < e && (cls[q] & kPS); ++q) {
    }
    while (q < e && (cls[q] & kCRLF)) ++q;
    return q - p;
  }
  if (c0 & kWS) {
    for (q = p + 1; q < e && (cls[q] & kWS); ++q) {
    }
    // \s*[\r\n]+ : up to the last \r or \n of the whitespace run
    for (size_t r = q; r-- > p;)
      if (cls[r] & kCRLF) return r + 1 - p;
    // \s+(?!\S) : the whole run at the end of input, else all but its last character
    if (q == e || q - p == 1) return q - p;  // (a single character falls to \s+)
    return q - 1 - p;
  }
  return 0;
}

// The third pattern over characters [b, e): matches and the gaps between them.
inline void split_third(const Chars& ch, size_t b, size_t e, Out& out) {
  const uint16_t* cls = ch.cls.data();
  size_t p = b, gap = b;
  while (p < e) {
    size_t len = match_at(cls, p, e);
    if (len == 0) {
      ++p;
      continue;
    }
    if (gap < p) out.emplace_back(ch.off[gap], ch.off[p]);
    out.emplace_back(ch.off[p], ch.off[p + len]);
    p += len;
    gap = p;
  }
  if (gap < e) out.emplace_back(ch.off[gap], ch.off[e]);
}
}  // namespace

void deepseek_v3_split(std::string_view text, Out& out) {
  static const AsciiClasses ascii;
  thread_local Chars ch;
  size_t n = 0;
  ch.cls.resize(text.size() + 1);
  ch.off.resize(text.size() + 1);
  for (size_t i = 0; i < text.size();) {
    uint8_t b = uint8_t(text[i]);
    ch.off[n] = uint32_t(i);
    if (b < 0x80) {
      ch.cls[n++] = ascii.c[b];
      ++i;
    } else {
      char32_t cp;
      i += unicode::decode_utf8(text.data(), text.size(), i, cp);
      ch.cls[n++] = classify(cp);
    }
  }
  ch.off[n] = uint32_t(text.size());
  const uint16_t* cls = ch.cls.data();

  size_t i = 0;
  while (i < n) {
    if (cls[i] & kN) {  // \p{N}{1,3}: groups of three from the left
      size_t j = i;
      while (j < n && (cls[j] & kN)) ++j;
      for (size_t k = i; k < j; k += 3) out.emplace_back(ch.off[k], ch.off[std::min(k + 3, j)]);
      i = j;
      continue;
    }
    size_t j = i;
    while (j < n && !(cls[j] & kN)) ++j;
    // CJK runs and the stretches between them, each cut by the third pattern on its own.
    for (size_t k = i; k < j;) {
      bool cjk = cls[k] & kCJK;
      size_t m = k + 1;
      while (m < j && bool(cls[m] & kCJK) == cjk) ++m;
      split_third(ch, k, m, out);
      k = m;
    }
    i = j;
  }
}

}  // namespace dseek::tok
