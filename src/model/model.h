// A model: config, weights (memory-mapped from safetensors or owned), RoPE table.
#pragma once
#include <string>

#include "core/model_folder.h"
#include "formats/safetensors.h"
#include "model/config.h"
#include "model/rope.h"
#include "model/weights.h"

namespace dseek {

struct LoadOptions {
  bool mtp = false;  // also load the multi-token-prediction modules
};

class Model {
 public:
  ModelConfig config;
  ModelWeights w;
  RopeTable rope;
  std::string source;  // folder it was loaded from

  // `path`: a model folder (config.json + safetensors), or a training run folder (its latest checkpoint).
  static Model load(const std::string& path, const LoadOptions& opt = {});
  // Random weights: matrices and embeddings N(0, initializer_range), norms 1, router bias 0.
  static Model random(const ModelConfig& c, uint64_t seed, DType dtype = DType::F32, bool with_mtp = true);

  // Hugging Face tensors (weights, FP8 scales, MTP copies of the shared embedding and head).
  NamedTensors hf_tensors() const;
  // Writes config.json and safetensors into `dir` (weights converted to `dtype` when given).
  void save(const std::string& dir, std::optional<DType> dtype = std::nullopt) const;

  int64_t parameter_count(bool active_only) const;
  size_t weight_bytes() const;
};

}  // namespace dseek
