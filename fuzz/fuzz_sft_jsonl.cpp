// SFT chat JSONL reader: any bytes as the file, rendered with a reference tokenizer (chosen by the size).
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "posttrain/sft_data.h"

// The tokenizers load before fuzzing starts (with ASan this takes longer than the per-input timeout).
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)dseek::fuzz::tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto& toks = dseek::fuzz::tokenizers();
  const std::string path = dseek::fuzz::write_temp(data, size, "chat.jsonl");
  std::vector<dseek::Conversation> train, val;
  try {
    dseek::load_conversations(path, toks[size % toks.size()], 0.25, train, val);
    (void)dseek::pack_conversations(train, 2, 64, 0);
  } catch (const dseek::Error&) {
  }
  return 0;
}
