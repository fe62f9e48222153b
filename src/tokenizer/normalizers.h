// Normalizers of tokenizer.json ("normalizer"): Sequence, NFC, NFD, NFKC, NFKD, Lowercase, Replace, Prepend,
// Append, Strip, StripAccents. Each maps text to text; other types are rejected by name.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace dseek::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string_view text) const = 0;
};

// nullptr for a JSON null or an empty Sequence (no normalization at all).
std::unique_ptr<Normalizer> normalizer_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace dseek::tok
