// Pre-tokenizers of tokenizer.json ("pre_tokenizer"): Sequence, Split (String or Regex pattern, every
// behavior, invert), ByteLevel, Digits, Metaspace, Whitespace, WhitespaceSplit. Each step cuts every piece
// the previous step produced; empty pieces are dropped (Hugging Face PreTokenizedString semantics).
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dseek::tok {

struct Piece {
  std::string text;
  bool at_start = false;  // begins at offset 0 of the original input (Metaspace prepend_scheme "first")
};

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void apply(std::vector<Piece>& pieces) const = 0;
};

struct PreTokenizerPipeline {
  std::vector<std::unique_ptr<PreTokenizer>> steps;
  // The last step was ByteLevel: its byte-to-character mapping is left to the BPE model, which then works
  // on raw bytes (pieces stay raw UTF-8).
  bool model_maps_bytes = false;
  // The steps are exactly DeepSeek-V3's three Split regexes followed by ByteLevel without regex or prefix
  // space: the hand-written splitter (deepseek_splitter.h) gives the same pieces much faster.
  bool deepseek_v3 = false;

  void apply(std::vector<Piece>& pieces) const {
    for (const auto& s : steps) s->apply(pieces);
  }
};

PreTokenizerPipeline pre_tokenizer_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace dseek::tok
