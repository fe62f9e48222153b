// The loop every training method runs (pretraining, SFT, distillation, GRPO): steps up to a target or a time limit,
// evaluation every N steps and at the end, one metrics.jsonl record per step, a progress line every N steps with the
// ETA, checkpoints every N steps, every M minutes and at the end, charts. A method supplies what one step and one
// evaluation are. SIGINT or SIGTERM during the loop finishes the current step, writes a checkpoint and throws
// Interrupted (the process exits with 128 + signal: 130, 143); a second signal ends the process at once.
#pragma once
#include <deque>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "train/run_dir.h"

namespace dseek {

// Thrown by run_loop after a SIGINT/SIGTERM stop wrote its checkpoint; main exits with 128 + signal.
struct Interrupted {
  int signal;
};

struct RunLoopConfig {
  int64_t steps = 0;          // target step
  int64_t eval_every = 0;     // 0: no evaluation
  int64_t log_every = 1;      // progress line cadence
  int64_t save_every = 0;     // 0: no step cadence
  double save_minutes = 0;    // also checkpoint when this long passed since the last one; 0: off
  double time_limit = 0;      // seconds of this session; 0: none
};

struct RunLoopMethod {
  // One optimizer step at step index `step` (0-based); returns its metrics record (the loop adds "step",
  // "step_s" and "elapsed_s").
  std::function<nlohmann::json(int64_t step)> step;
  // Adds evaluation fields to the record (may be null).
  std::function<void(nlohmann::json& record)> evaluate;
  // The method's part of the progress line, e.g. "loss 2.31 | lr 3e-4" (after "step N/M | ", before " | ETA").
  std::function<std::string(const nlohmann::json& record)> progress;
  // The part after the ETA when the record holds evaluation fields (may be null).
  std::function<std::string(const nlohmann::json& record)> eval_progress;
  std::function<void()> save;  // writes a checkpoint of the current step
};

// The mean of the last `n` values pushed (the progress line's step time, tokens/s and ETA).
class MovingWindow {
 public:
  explicit MovingWindow(size_t n) : n_(n) {}
  void push(double v) {
    values_.push_back(v);
    sum_ += v;
    if (values_.size() > n_) sum_ -= values_.front(), values_.pop_front();
  }
  double mean() const { return values_.empty() ? 0.0 : sum_ / double(values_.size()); }

 private:
  size_t n_;
  std::deque<double> values_;
  double sum_ = 0;
};

// Runs from `step` (advanced in place) to cfg.steps; `elapsed` accumulates training seconds over sessions.
void run_loop(RunDir& run, const RunLoopConfig& cfg, const RunLoopMethod& method, int64_t& step, double& elapsed);

// "1:02:03" / "2:03"
std::string hms(double seconds);

}  // namespace dseek
