#include "tokenizer/pre_tokenizers.h"

#include <functional>

#include "core/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/deepseek_splitter.h"
#include "tokenizer/pattern.h"
#include "tokenizer/unicode.h"

namespace dseek::tok {

namespace {
using nlohmann::json;
using Ranges = std::vector<std::pair<size_t, size_t>>;

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const json& j, const std::string& where) {
  static const std::pair<const char*, Behavior> names[] = {
      {"Removed", Behavior::Removed},
      {"Isolated", Behavior::Isolated},
      {"MergedWithPrevious", Behavior::MergedWithPrevious},
      {"MergedWithNext", Behavior::MergedWithNext},
      {"Contiguous", Behavior::Contiguous}};
  if (j.is_string())
    for (auto& [name, b] : names)
      if (j.get<std::string>() == name) return b;
  fail("{}: unknown split behavior {} (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)",
       where, j.dump());
}

// Cuts `text` at the `matches` (sorted, non-overlapping) and keeps the parts as `behavior` says.
void split_text(const Piece& piece, const Ranges& matches, Behavior behavior, bool invert, std::vector<Piece>& out) {
  const std::string& text = piece.text;
  if (text.empty()) return;
  struct Part {
    size_t b, e;
    bool match;
  };
  std::vector<Part> parts;
  size_t prev = 0;
  for (auto [s, e] : matches) {
    if (prev != s) parts.push_back({prev, s, invert});
    parts.push_back({s, e, !invert});
    prev = e;
  }
  if (prev != text.size()) parts.push_back({prev, text.size(), invert});

  struct Kept {
    size_t b, e;
    bool remove;
  };
  std::vector<Kept> kept;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::Isolated:
      for (auto& p : parts) kept.push_back({p.b, p.e, false});
      break;
    case Behavior::Removed:
      for (auto& p : parts) kept.push_back({p.b, p.e, p.match});
      break;
    case Behavior::Contiguous:
      for (auto& p : parts) {
        if (p.match == previous_match && !kept.empty()) {
          kept.back().e = p.e;
        } else {
          kept.push_back({p.b, p.e, false});
        }
        previous_match = p.match;
      }
      break;
    case Behavior::MergedWithPrevious:
      for (auto& p : parts) {
        if (p.match && !previous_match && !kept.empty()) {
          kept.back().e = p.e;
        } else {
          kept.push_back({p.b, p.e, false});
        }
        previous_match = p.match;
      }
      break;
    case Behavior::MergedWithNext:
      for (size_t i = parts.size(); i-- > 0;) {
        const Part& p = parts[i];
        if (p.match && !previous_match && !kept.empty()) {
          kept.back().b = p.b;
        } else {
          kept.push_back({p.b, p.e, false});
        }
        previous_match = p.match;
      }
      std::reverse(kept.begin(), kept.end());
      break;
  }
  for (auto& k : kept) {
    if (k.remove || k.b == k.e) continue;
    out.push_back({text.substr(k.b, k.e - k.b), piece.at_start && k.b == 0});
  }
}

void split_all(std::vector<Piece>& pieces, const std::function<Ranges(const std::string&)>& find, Behavior behavior,
               bool invert) {
  std::vector<Piece> out;
  out.reserve(pieces.size() * 2);
  for (const Piece& p : pieces) split_text(p, find(p.text), behavior, invert, out);
  pieces.swap(out);
}

// Each character for which `pred` holds is one match.
Ranges char_matches(const std::string& text, const std::function<bool(char32_t)>& pred) {
  Ranges r;
  for (size_t i = 0; i < text.size();) {
    char32_t cp;
    size_t n = unicode::decode_utf8(text.data(), text.size(), i, cp);
    if (pred(cp)) r.emplace_back(i, i + n);
    i += n;
  }
  return r;
}

// Maximal runs of characters for which `cls` gives the same non-zero class.
Ranges class_runs(const std::string& text, const std::function<int(char32_t)>& cls) {
  Ranges r;
  int current = 0;
  for (size_t i = 0; i < text.size();) {
    char32_t cp;
    size_t n = unicode::decode_utf8(text.data(), text.size(), i, cp);
    int c = cls(cp);
    if (c != 0 && c == current) {
      r.back().second = i + n;
    } else if (c != 0) {
      r.emplace_back(i, i + n);
    }
    current = c;
    i += n;
  }
  return r;
}

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern p, Behavior b, bool invert) : pattern_(std::move(p)), behavior_(b), invert_(invert) {}
  void apply(std::vector<Piece>& pieces) const override {
    split_all(pieces, [&](const std::string& t) { return pattern_.find_all(t); }, behavior_, invert_);
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, bool map_bytes, const std::string& where)
      : add_prefix_space_(add_prefix_space), map_bytes_(map_bytes) {
    if (use_regex) regex_ = std::make_unique<Regex>(kGpt2Pattern, where);
  }
  void apply(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_)
      for (Piece& p : pieces)
        if (!p.text.empty() && p.text[0] != ' ') p.text.insert(p.text.begin(), ' ');
    if (regex_)
      split_all(pieces, [&](const std::string& t) { return regex_->find_all(t); }, Behavior::Isolated, false);
    if (map_bytes_)
      for (Piece& p : pieces) p.text = byte_level_encode(p.text);
  }
  void set_map_bytes(bool v) { map_bytes_ = v; }

 private:
  bool add_prefix_space_, map_bytes_;
  std::unique_ptr<Regex> regex_;
};

class DigitsPreTokenizer : public PreTokenizer {
 public:
  explicit DigitsPreTokenizer(bool individual) : individual_(individual) {}
  void apply(std::vector<Piece>& pieces) const override {
    auto numeric = [](char32_t c) { return unicode::in(c, unicode::kNumber); };
    split_all(pieces, [&](const std::string& t) { return char_matches(t, numeric); },
              individual_ ? Behavior::Isolated : Behavior::Contiguous, false);
  }

 private:
  bool individual_;
};

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  enum class Prepend { Always, First, Never };
  MetaspacePreTokenizer(char32_t replacement, Prepend prepend, bool split)
      : prepend_(prepend), split_(split), replacement_cp_(replacement) {
    unicode::append_utf8(replacement_, replacement);
  }
  void apply(std::vector<Piece>& pieces) const override {
    for (Piece& p : pieces) {
      std::string s;
      for (char c : p.text) {
        if (c == ' ') {
          s += replacement_;
        } else {
          s += c;
        }
      }
      bool starts = s.compare(0, replacement_.size(), replacement_) == 0;
      if (!s.empty() && !starts && (prepend_ == Prepend::Always || (prepend_ == Prepend::First && p.at_start)))
        s = replacement_ + s;
      p.text = std::move(s);
    }
    if (split_) {
      char32_t r = replacement_cp_;
      split_all(pieces, [&](const std::string& t) { return char_matches(t, [r](char32_t c) { return c == r; }); },
                Behavior::MergedWithNext, false);
    }
  }

 private:
  Prepend prepend_;
  bool split_;
  char32_t replacement_cp_;
  std::string replacement_;
};

// Whitespace: \w+|[^\w\s]+ (Rust regex classes), whitespace removed.
class WhitespacePreTokenizer : public PreTokenizer {
 public:
  void apply(std::vector<Piece>& pieces) const override {
    auto cls = [](char32_t c) { return unicode::is_word_char(c) ? 1 : unicode::is_white_space(c) ? 0 : 2; };
    split_all(pieces, [&](const std::string& t) { return class_runs(t, cls); }, Behavior::Removed, true);
  }
};

// WhitespaceSplit: split on White_Space characters, which are removed.
class WhitespaceSplitPreTokenizer : public PreTokenizer {
 public:
  void apply(std::vector<Piece>& pieces) const override {
    split_all(pieces, [](const std::string& t) { return char_matches(t, unicode::is_white_space); },
              Behavior::Removed, false);
  }
};

bool bool_field(const json& j, const char* name, bool def, const std::string& where) {
  if (!j.contains(name) || j[name].is_null()) return def;
  if (!j[name].is_boolean()) fail("{}.{}: expected true or false", where, name);
  return j[name].get<bool>();
}

void build(const json& j, const std::string& where, PreTokenizerPipeline& out) {
  if (j.is_null()) return;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    fail("{}: expected an object with a \"type\"", where);
  std::string type = j["type"].get<std::string>();
  if (type == "Sequence") {
    if (!j.contains("pretokenizers") || !j["pretokenizers"].is_array())
      fail("{}.pretokenizers: expected an array", where);
    const json& list = j["pretokenizers"];
    for (size_t i = 0; i < list.size(); ++i) build(list[i], fmt::format("{}.pretokenizers[{}]", where, i), out);
  } else if (type == "Split") {
    if (!j.contains("pattern")) fail("{}: missing field 'pattern'", where);
    if (!j.contains("behavior")) fail("{}: missing field 'behavior'", where);
    out.steps.push_back(std::make_unique<SplitPreTokenizer>(Pattern::from_json(j["pattern"], where + ".pattern"),
                                                            parse_behavior(j["behavior"], where + ".behavior"),
                                                            bool_field(j, "invert", false, where)));
  } else if (type == "ByteLevel") {
    out.steps.push_back(std::make_unique<ByteLevelPreTokenizer>(bool_field(j, "add_prefix_space", true, where),
                                                                bool_field(j, "use_regex", true, where), true, where));
  } else if (type == "Digits") {
    out.steps.push_back(std::make_unique<DigitsPreTokenizer>(bool_field(j, "individual_digits", false, where)));
  } else if (type == "Metaspace") {
    std::string rep = j.value("replacement", std::string("\xE2\x96\x81"));
    std::u32string r = unicode::to_utf32(rep);
    if (r.size() != 1) fail("{}.replacement: expected a single character", where);
    auto prepend = MetaspacePreTokenizer::Prepend::Always;
    if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
      std::string s = j["prepend_scheme"].get<std::string>();
      if (s == "always") {
        prepend = MetaspacePreTokenizer::Prepend::Always;
      } else if (s == "first") {
        prepend = MetaspacePreTokenizer::Prepend::First;
      } else if (s == "never") {
        prepend = MetaspacePreTokenizer::Prepend::Never;
      } else {
        fail("{}.prepend_scheme: expected always, first or never, got '{}'", where, s);
      }
    } else if (!bool_field(j, "add_prefix_space", true, where)) {
      prepend = MetaspacePreTokenizer::Prepend::Never;
    }
    out.steps.push_back(std::make_unique<MetaspacePreTokenizer>(r[0], prepend, bool_field(j, "split", true, where)));
  } else if (type == "Whitespace") {
    out.steps.push_back(std::make_unique<WhitespacePreTokenizer>());
  } else if (type == "WhitespaceSplit") {
    out.steps.push_back(std::make_unique<WhitespaceSplitPreTokenizer>());
  } else {
    fail("{}: unsupported pre-tokenizer type '{}' (supported: Sequence, Split, ByteLevel, Digits, Metaspace, "
         "Whitespace, WhitespaceSplit)",
         where, type);
  }
}
}  // namespace

PreTokenizerPipeline pre_tokenizer_from_json(const json& j, const std::string& where) {
  PreTokenizerPipeline p;
  build(j, where, p);
  if (!p.steps.empty())
    if (auto* bl = dynamic_cast<ByteLevelPreTokenizer*>(p.steps.back().get())) {
      bl->set_map_bytes(false);
      p.model_maps_bytes = true;
    }
  p.deepseek_v3 = is_deepseek_v3_pre_tokenizer(j);
  return p;
}

}  // namespace dseek::tok
