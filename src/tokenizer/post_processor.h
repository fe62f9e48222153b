// Post-processors of tokenizer.json ("post_processor") for single sequences: TemplateProcessing, ByteLevel,
// Sequence, BertProcessing, RobertaProcessing. With add_special they wrap the ids as prefix + ids + suffix.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dseek::tok {

struct PostProcessor {
  std::vector<int32_t> prefix, suffix;

  static PostProcessor from_json(const nlohmann::json& j, const std::string& where);
  void apply(std::vector<int32_t>& ids) const {
    ids.insert(ids.begin(), prefix.begin(), prefix.end());
    ids.insert(ids.end(), suffix.begin(), suffix.end());
  }
};

}  // namespace dseek::tok
