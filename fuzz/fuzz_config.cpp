// config.json parsing: any bytes; dseek::Error is the expected outcome of bad input, crashes and UB are not.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    dseek::ModelConfig c = dseek::ModelConfig::from_json(j, "fuzz/config.json");
    (void)c.softmax_scale();
    (void)c.rope_cos_sin_scale();
    (void)c.kv_cache_dim();
    dseek::ModelConfig::from_json(c.to_json(), "fuzz/config.json (written back)");
  } catch (const dseek::Error&) {
  }
  return 0;
}
