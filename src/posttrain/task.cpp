#include "posttrain/task.h"

#include "core/error.h"
#include "posttrain/task_util.h"

namespace dseek {

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

Split parse_split(const std::string& task, const std::string& split) {
  if (split == "train") return Split::Train;
  if (split == "eval") return Split::Eval;
  fail("task {}: unknown split '{}' (expected train or eval)", task, split);
}

Split split_of(uint64_t seed, const std::string& key) {
  return (splitmix64(fnv1a(key) ^ splitmix64(seed)) & 7) == 0 ? Split::Eval : Split::Train;
}

void fail_no_problem(const std::string& task, const std::string& split) {
  fail("task {}: no {} problem found in 10000 draws: the options leave too few problems", task, split);
}

std::vector<std::string> task_names() { return {"arithmetic", "countdown"}; }

std::unique_ptr<Task> make_task(const std::string& name, const TaskOptions& o) {
  if (name == "arithmetic") return make_arithmetic_task(o);
  if (name == "countdown") return make_countdown_task(o);
  fail("unknown task '{}' (tasks: {})", name, fmt::join(task_names(), ", "));
}

}  // namespace dseek
