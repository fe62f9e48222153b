// Encode / decode of arbitrary bytes with the reference tokenizers: the first byte picks the tokenizer, the rest
// is the text (invalid UTF-8 is an error) and, read as little-endian 32-bit words, ids to decode.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "core/error.h"
#include "fuzz_util.h"

// The tokenizers load before fuzzing starts (with ASan this takes longer than the per-input timeout).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)dseek::fuzz::tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& toks = dseek::fuzz::tokenizers();
  const dseek::Tokenizer& tok = toks[data[0] % toks.size()];
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    std::vector<int32_t> ids = tok.encode(text, (data[0] & 0x80) != 0);
    (void)tok.decode(ids, (data[0] & 0x40) != 0);
  } catch (const dseek::Error&) {
  }
  std::vector<int32_t> ids((size - 1) / 4);
  if (!ids.empty()) std::memcpy(ids.data(), data + 1, ids.size() * 4);
  try {
    (void)tok.decode(ids, (data[0] & 0x40) != 0);
    dseek::StreamDecoder sd(tok);
    for (int32_t id : ids) (void)sd.push(id);
    (void)sd.flush();
  } catch (const dseek::Error&) {
  }
  return 0;
}
