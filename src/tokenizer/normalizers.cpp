#include "tokenizer/normalizers.h"

#include <vector>

#include "core/error.h"
#include "tokenizer/pattern.h"
#include "tokenizer/unicode.h"

namespace dseek::tok {

namespace {
using nlohmann::json;

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  std::string normalize(std::string_view text) const override {
    std::string s(text);
    for (const auto& n : steps_) s = n->normalize(s);
    return s;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(unicode::NormalForm form) : form_(form) {}
  std::string normalize(std::string_view text) const override { return unicode::normalize(text, form_); }

 private:
  unicode::NormalForm form_;
};

class LowercaseNormalizer : public Normalizer {
 public:
  std::string normalize(std::string_view text) const override { return unicode::to_lower(text); }
};

// Every match of the pattern is replaced by `content`.
class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Pattern p, std::string content) : pattern_(std::move(p)), content_(std::move(content)) {}
  std::string normalize(std::string_view text) const override {
    std::string out;
    size_t prev = 0;
    for (auto [s, e] : pattern_.find_all(text)) {
      out.append(text.substr(prev, s - prev));
      out += content_;
      prev = e;
    }
    out.append(text.substr(prev));
    return out;
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Prepend / Append add their text to non-empty input only.
class AffixNormalizer : public Normalizer {
 public:
  AffixNormalizer(std::string affix, bool prepend) : affix_(std::move(affix)), prepend_(prepend) {}
  std::string normalize(std::string_view text) const override {
    if (text.empty()) return {};
    return prepend_ ? affix_ + std::string(text) : std::string(text) + affix_;
  }

 private:
  std::string affix_;
  bool prepend_;
};

// Strips White_Space characters from the left and/or right.
class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string_view text) const override {
    std::u32string cps = unicode::to_utf32(text);
    size_t b = 0, e = cps.size();
    if (left_)
      while (b < e && unicode::is_white_space(cps[b])) ++b;
    if (right_)
      while (e > b && unicode::is_white_space(cps[e - 1])) --e;
    return unicode::to_utf8(std::u32string_view(cps).substr(b, e - b));
  }

 private:
  bool left_, right_;
};

// Removes nonspacing marks (Mn).
class StripAccentsNormalizer : public Normalizer {
 public:
  std::string normalize(std::string_view text) const override {
    std::string out;
    for (size_t i = 0; i < text.size();) {
      char32_t cp;
      size_t n = unicode::decode_utf8(text.data(), text.size(), i, cp);
      if (unicode::category(cp) != unicode::Mn) out.append(text.substr(i, n));
      i += n;
    }
    return out;
  }
};

const json& field(const json& j, const char* name, const std::string& where) {
  if (!j.contains(name)) fail("{}: missing field '{}'", where, name);
  return j[name];
}
std::string string_field(const json& j, const char* name, const std::string& where) {
  const json& v = field(j, name, where);
  if (!v.is_string()) fail("{}.{}: expected a string", where, name);
  return v.get<std::string>();
}
bool bool_field(const json& j, const char* name, bool def, const std::string& where) {
  if (!j.contains(name) || j[name].is_null()) return def;
  if (!j[name].is_boolean()) fail("{}.{}: expected true or false", where, name);
  return j[name].get<bool>();
}
}  // namespace

std::unique_ptr<Normalizer> normalizer_from_json(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    fail("{}: expected an object with a \"type\"", where);
  std::string type = j["type"].get<std::string>();
  if (type == "Sequence") {
    const json& list = field(j, "normalizers", where);
    if (!list.is_array()) fail("{}.normalizers: expected an array", where);
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      auto n = normalizer_from_json(list[i], fmt::format("{}.normalizers[{}]", where, i));
      if (n) steps.push_back(std::move(n));
    }
    if (steps.empty()) return nullptr;
    if (steps.size() == 1) return std::move(steps[0]);
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(unicode::NormalForm::NFKD);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(Pattern::from_json(field(j, "pattern", where), where + ".pattern"),
                                               string_field(j, "content", where));
  if (type == "Prepend") return std::make_unique<AffixNormalizer>(string_field(j, "prepend", where), true);
  if (type == "Append") return std::make_unique<AffixNormalizer>(string_field(j, "append", where), false);
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(bool_field(j, "strip_left", true, where),
                                             bool_field(j, "strip_right", true, where));
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  fail("{}: unsupported normalizer type '{}' (supported: Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Replace, "
       "Prepend, Append, Strip, StripAccents)",
       where, type);
}

}  // namespace dseek::tok
