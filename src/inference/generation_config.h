// generation_config.json: the sampling defaults a model folder carries, read as transformers' generate() reads
// them and written as its save_pretrained() writes them.
//
// Reading (GenerationDefaults::load): fields present are used; a file without do_sample, or with do_sample false,
// means greedy decoding (transformers' rule), with the sampling fields kept for when the user asks for sampling;
// the fields it leaves out take transformers' defaults (temperature 1, top_k 50, top_p 1). A folder without the
// file samples with llama.cpp's defaults (temperature 0.8, top_k 40, top_p 0.95).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "inference/sampler.h"

namespace dseek {

struct GenerationDefaults {
  SamplingParams sampling;
  std::string source;  // where the defaults came from, for the user ("DIR/generation_config.json", "llama.cpp's")

  // The defaults of model folder `dir`; a malformed file or field is an error naming the file and field.
  static GenerationDefaults load(const std::string& dir);
};

// Writes DIR/generation_config.json with the model's special ids and, when `sampling` is given, do_sample and
// the sampling fields (temperature 0 is written as do_sample false).
void write_generation_config(const std::string& dir, int64_t bos_token_id, const std::vector<int64_t>& eos_token_ids,
                             const std::optional<SamplingParams>& sampling);

}  // namespace dseek
