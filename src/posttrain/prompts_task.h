// A post-training task from a prompts file (JSON Lines) instead of a built-in generator.
#pragma once
#include <memory>
#include <string>

#include "posttrain/task.h"

namespace dseek {

// A task from a prompts file: {"prompt", "answer"} per line; accuracy compares the extracted answer with
// "answer" (as integers when both parse, else as trimmed text); format as the built-in tasks.
std::unique_ptr<Task> load_prompts_task(const std::string& path);

}  // namespace dseek
