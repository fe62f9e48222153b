// Built-in post-training tasks: seeded problem generators with rule-based rewards (DeepSeek-R1-Zero style).
//
//   std::unique_ptr<Task> t = make_task("arithmetic", {.seed = 1});
//   TaskExample ex = t->example("train", 17);       // same (seed, split, index) -> same problem
//   Reward r = t->score(ex, completion);            // accuracy and format, each 0 or 1
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dseek {

struct TaskExample {
  std::string prompt;   // the user message (plain text)
  std::string answer;   // canonical answer text: the result (arithmetic) or the target (countdown)
  nlohmann::json meta;  // task data (operands, numbers, target, ...)
};

struct Reward {
  double accuracy = 0, format = 0;  // each 0 or 1; weights are applied by the trainer
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  // Example `index` of split "train" or "eval": deterministic in (seed, split, index); the two splits never
  // share a problem (another split name is an error).
  virtual TaskExample example(const std::string& split, uint64_t index) const = 0;
  // A correct worked solution as the assistant writes it: "<think>\n...\n</think>\n<answer>...</answer>".
  virtual std::string solution(const TaskExample& ex) const = 0;
  // accuracy: the extracted answer is right; format: format_ok (verifier.h).
  virtual Reward score(const TaskExample& ex, const std::string& completion) const = 0;
};

struct TaskOptions {
  uint64_t seed = 0;
  int min_digits = 1, max_digits = 3;  // arithmetic: digits of each operand (1..9)
  int numbers = 3;                     // countdown: how many numbers (2..6)
  // additions to the agreed interface:
  std::string ops = "+-*";  // arithmetic: operations drawn from, any of "+-*/" (division always exact)
  int max_number = 99;      // countdown: numbers are drawn from 1..max_number
  int max_target = 999;     // countdown: targets are 1..max_target
};

// "arithmetic" or "countdown"; an unknown name is an error listing the names.
std::unique_ptr<Task> make_task(const std::string& name, const TaskOptions& o);
std::vector<std::string> task_names();

}  // namespace dseek
