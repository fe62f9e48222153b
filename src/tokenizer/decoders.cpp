#include "tokenizer/decoders.h"

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/pattern.h"
#include "tokenizer/unicode.h"

namespace dseek::tok {

namespace {
using nlohmann::json;

// Each token's characters back to bytes (tokens with characters outside the map stay as they are), then
// UTF-8 decoding of the whole with U+FFFD for invalid sequences.
class ByteLevelDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      size_t mark = bytes.size();
      if (!byte_level_decode(t, bytes)) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, unicode::sanitize_utf8(bytes));
  }
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : steps_) d->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Pattern p, std::string content) : pattern_(std::move(p)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      std::string out;
      size_t prev = 0;
      for (auto [s, e] : pattern_.find_all(t)) {
        out.append(t, prev, s - prev);
        out += content_;
        prev = e;
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Removes up to `start` leading and `stop` trailing copies of one character from every token.
class StripDecoder : public Decoder {
 public:
  StripDecoder(char32_t c, size_t start, size_t stop) : c_(c), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      std::u32string cps = unicode::to_utf32(t);
      size_t b = 0, e = cps.size();
      while (b < start_ && b < e && cps[b] == c_) ++b;
      for (size_t k = 0; k < stop_ && e > b && cps[e - 1] == c_; ++k) --e;
      t = unicode::to_utf8(std::u32string_view(cps).substr(b, e - b));
    }
  }

 private:
  char32_t c_;
  size_t start_, stop_;
};

class FuseDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, all);
  }
};

// Runs of "<0xNN>" tokens become the UTF-8 text of their bytes (one U+FFFD per byte when invalid).
class ByteFallbackDecoder : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    size_t count = 0;
    auto flush = [&] {
      if (count == 0) return;
      if (unicode::find_invalid_utf8(bytes) == std::string::npos) {
        out.push_back(bytes);
      } else {
        for (size_t k = 0; k < count; ++k) out.push_back("\xEF\xBF\xBD");
      }
      bytes.clear();
      count = 0;
    };
    for (std::string& t : tokens) {
      int v = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        auto hex = [](char c) { return std::isxdigit(uint8_t(c)) ? (std::isdigit(uint8_t(c)) ? c - '0' : (std::tolower(c) - 'a' + 10)) : -1; };
        int hi = hex(t[3]), lo = hex(t[4]);
        if (hi >= 0 && lo >= 0) v = hi * 16 + lo;
      }
      if (v >= 0) {
        bytes += char(v);
        ++count;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }
};

// The replacement character becomes a space; in the first token it is dropped unless prepend_scheme is never.
class MetaspaceDecoder : public Decoder {
 public:
  MetaspaceDecoder(char32_t replacement, bool strip_first) : r_(replacement), strip_first_(strip_first) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      std::string_view t = tokens[i];
      for (size_t k = 0; k < t.size();) {
        char32_t cp;
        size_t n = unicode::decode_utf8(t.data(), t.size(), k, cp);
        if (cp == r_) {
          if (!(i == 0 && strip_first_)) out += ' ';
        } else {
          out.append(t.substr(k, n));
        }
        k += n;
      }
      tokens[i] = std::move(out);
    }
  }

 private:
  char32_t r_;
  bool strip_first_;
};

char32_t single_char(const json& j, const char* name, const std::string& where) {
  if (!j.contains(name) || !j[name].is_string()) fail("{}.{}: expected a one-character string", where, name);
  std::u32string s = unicode::to_utf32(j[name].get<std::string>());
  if (s.size() != 1) fail("{}.{}: expected a one-character string", where, name);
  return s[0];
}
}  // namespace

std::unique_ptr<Decoder> decoder_from_json(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    fail("{}: expected an object with a \"type\"", where);
  std::string type = j["type"].get<std::string>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Sequence") {
    if (!j.contains("decoders") || !j["decoders"].is_array()) fail("{}.decoders: expected an array", where);
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < j["decoders"].size(); ++i)
      if (auto d = decoder_from_json(j["decoders"][i], fmt::format("{}.decoders[{}]", where, i))) steps.push_back(std::move(d));
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  if (type == "Replace") {
    if (!j.contains("pattern")) fail("{}: missing field 'pattern'", where);
    if (!j.contains("content") || !j["content"].is_string()) fail("{}.content: expected a string", where);
    return std::make_unique<ReplaceDecoder>(Pattern::from_json(j["pattern"], where + ".pattern"),
                                            j["content"].get<std::string>());
  }
  if (type == "Strip") {
    auto count = [&](const char* name) -> size_t {
      if (!j.contains(name) || !j[name].is_number_integer() || j[name].get<int64_t>() < 0)
        fail("{}.{}: expected a count", where, name);
      return j[name].get<size_t>();
    };
    return std::make_unique<StripDecoder>(single_char(j, "content", where), count("start"), count("stop"));
  }
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Metaspace") {
    bool strip_first = true;
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
      strip_first = j["prepend_scheme"].get<std::string>() != "never";
    } else if (j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean()) {
      strip_first = j["add_prefix_space"].get<bool>();
    }
    return std::make_unique<MetaspaceDecoder>(j.contains("replacement") ? single_char(j, "replacement", where) : U'\u2581',
                                              strip_first);
  }
  fail("{}: unsupported decoder type '{}' (supported: ByteLevel, Sequence, Replace, Strip, Fuse, ByteFallback, "
       "Metaspace)",
       where, type);
}

}  // namespace dseek::tok
