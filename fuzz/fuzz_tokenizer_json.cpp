// tokenizer.json loading: any bytes as the file; a tokenizer it accepts encodes and decodes a fixed text.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  try {
    dseek::Tokenizer tok = dseek::Tokenizer::from_json(j, nullptr, "fuzz/tokenizer.json");
    std::vector<int32_t> ids = tok.encode("Hello, world! 12345 héllo 你好 <|end|>  \n\t x", true);
    (void)tok.decode(ids, false);
    (void)tok.decode(ids, true);
    (void)tok.vocab_size();
    for (int32_t id : {-1, 0, 1, 255, 1 << 30}) (void)tok.id_to_token(id);
  } catch (const dseek::Error&) {
  }
  return 0;
}
