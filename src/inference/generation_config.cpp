#include "inference/generation_config.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fileio.h"
#include "core/json_util.h"

namespace dseek {

using json = nlohmann::json;

GenerationDefaults GenerationDefaults::load(const std::string& dir) {
  GenerationDefaults d;
  const std::string path = path_join(dir, "generation_config.json");
  if (!file_exists(path)) {
    d.sampling.temperature = 0.8f;
    d.sampling.top_k = 40;
    d.sampling.top_p = 0.95f;
    d.source = "llama.cpp's defaults, as " + dir + " has no generation_config.json";
    return d;
  }
  const json j = json::parse(read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) fail("{}: not a JSON object", path);
  // transformers' GenerationConfig defaults for the fields the file leaves out
  SamplingParams& s = d.sampling;
  s.temperature = 1.0f;
  s.top_k = 50;
  s.top_p = 1.0f;
  auto field = [&](const char* key, auto& dst) {
    if (j.contains(key) && j[key].is_null()) return;  // transformers writes null for "not set"
    read_field(j, key, dst, path);
  };
  bool do_sample = false;
  field("do_sample", do_sample);
  field("temperature", s.temperature);
  field("top_k", s.top_k);
  field("top_p", s.top_p);
  field("min_p", s.min_p);
  field("repetition_penalty", s.repetition_penalty);
  check_sampling_params(s, [&](std::string_view key) { return fmt::format("{}: field '{}'", path, key); });
  if (!do_sample) s.temperature = 0;  // greedy, as transformers' generate() decides
  d.source = path;
  return d;
}

void write_generation_config(const std::string& dir, int64_t bos_token_id, const std::vector<int64_t>& eos_token_ids,
                             const std::optional<SamplingParams>& sampling) {
  json j = json::object();
  if (bos_token_id >= 0) j["bos_token_id"] = bos_token_id;
  if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids.front();
  else if (!eos_token_ids.empty()) j["eos_token_id"] = eos_token_ids;
  if (sampling) {
    const SamplingParams& s = *sampling;
    j["do_sample"] = s.temperature > 0;
    if (s.temperature > 0) j["temperature"] = s.temperature;
    j["top_k"] = s.top_k;
    j["top_p"] = s.top_p;
    if (s.min_p > 0) j["min_p"] = s.min_p;
    if (s.repetition_penalty != 1.0f) j["repetition_penalty"] = s.repetition_penalty;
  }
  write_file_atomic(path_join(dir, "generation_config.json"), j.dump(2) + "\n");
}

}  // namespace dseek
