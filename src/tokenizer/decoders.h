// Decoders of tokenizer.json ("decoder"): ByteLevel, Sequence, Replace, Strip, Fuse, ByteFallback, Metaspace.
// A decoder maps the list of token strings to a list of strings that are then concatenated.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dseek::tok {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// nullptr for JSON null (tokens are then joined with spaces, as Hugging Face does without a decoder).
std::unique_ptr<Decoder> decoder_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace dseek::tok
