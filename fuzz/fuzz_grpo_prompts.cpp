// GRPO prompts JSONL reader: any bytes as the file; each prompt is fetched and scored against its own text.
#include <cstddef>
#include <cstdint>

#include "core/error.h"
#include "fuzz_util.h"
#include "posttrain/prompts_task.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = dseek::fuzz::write_temp(data, size, "prompts.jsonl");
  try {
    auto task = dseek::load_prompts_task(path);
    for (uint64_t i = 0; i < 4; i++) {
      dseek::TaskExample ex = task->example(i % 2 ? "eval" : "train", i);
      (void)task->score(ex, ex.prompt);
      (void)task->score(ex, "<answer>" + ex.answer + "</answer>");
    }
  } catch (const dseek::Error&) {
  }
  return 0;
}
