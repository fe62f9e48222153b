// Shared by the task generators (internal): split assignment and per-example random streams.
#pragma once
#include <memory>
#include <string>

#include "core/rng.h"
#include "posttrain/task.h"

namespace dseek {

enum class Split { Train, Eval };
// "train" or "eval"; anything else fails naming the task and the split.
Split parse_split(const std::string& task, const std::string& split);

// Which split a problem belongs to: a hash of its canonical `key` (and the seed) holds 1 in 8 problems out
// for eval, so the splits are disjoint over the whole problem space, not only over the indices drawn.
Split split_of(uint64_t seed, const std::string& key);

std::unique_ptr<Task> make_arithmetic_task(const TaskOptions& o);
std::unique_ptr<Task> make_countdown_task(const TaskOptions& o);

uint64_t fnv1a(const std::string& s);
[[noreturn]] void fail_no_problem(const std::string& task, const std::string& split);

// Draws candidates with `draw(rng)` (returning {key, example}) from the stream of (seed, task, split, index)
// until one belongs to `split`; fails if the problem space seems to have none.
template <class Draw>
TaskExample draw_example(const std::string& task, uint64_t seed, const std::string& split_name, uint64_t index,
                         Draw draw) {
  const Split split = parse_split(task, split_name);
  Rng rng(hash_index(seed, fnv1a(task) + uint64_t(split), index));
  for (int attempt = 0; attempt < 10000; attempt++) {
    auto [key, ex] = draw(rng);
    if (split_of(seed, key) == split) return ex;
  }
  fail_no_problem(task, split_name);
}

}  // namespace dseek
