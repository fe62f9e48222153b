#include "train/run_loop.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fmt/format.h>

#include "core/error.h"

namespace dseek {

using json = nlohmann::json;

namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

// First SIGINT/SIGTERM: ask the loop to stop after this step. Second: the default action (the process ends).
extern "C" void on_stop_signal(int sig) {
  if (g_stop_signal != 0) {
    std::signal(sig, SIG_DFL);
    std::raise(sig);
    return;
  }
  g_stop_signal = sig;
  static const char msg[] = "\nstopping after this step to write a checkpoint (signal again to quit at once)\n";
  const ssize_t r = ::write(STDERR_FILENO, msg, sizeof msg - 1);
  (void)r;
}

// SIGINT and SIGTERM handlers for the lifetime of the loop.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~StopSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  int received() const { return g_stop_signal; }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace

std::string hms(double s) {
  const int64_t t = int64_t(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02d}:{:02d}", t / 3600, (t / 60) % 60, t % 60)
                   : fmt::format("{}:{:02d}", t / 60, t % 60);
}

void run_loop(RunDir& run, const RunLoopConfig& cfg, const RunLoopMethod& method, int64_t& step, double& elapsed) {
  using clock = std::chrono::steady_clock;
  const auto session_start = clock::now();
  auto session_s = [&] { return std::chrono::duration<double>(clock::now() - session_start).count(); };
  MovingWindow recent(20);  // seconds per step over the last 20 steps, for the ETA
  double last_save_s = 0;  // session time of the last checkpoint
  if (step >= cfg.steps) {
    std::fprintf(stderr, "%s is already at step %lld (target %lld): nothing to train; pass a larger --steps to continue\n",
                 run.path().c_str(), (long long)step, (long long)cfg.steps);
    return;
  }
  StopSignals signals;
  while (step < cfg.steps) {
    const auto t0 = clock::now();
    json rec = method.step(step);
    step++;
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    elapsed += dt;
    recent.push(dt);
    rec["step"] = step;
    rec["step_s"] = dt;
    rec["elapsed_s"] = elapsed;
    const bool time_up = cfg.time_limit > 0 && session_s() >= cfg.time_limit;
    const int stop_signal = signals.received();
    const bool last = step == cfg.steps || time_up || stop_signal != 0;
    // a stop by signal skips the final evaluation: the checkpoint comes first
    const bool evaluated = method.evaluate && cfg.eval_every > 0 &&
                           (step % cfg.eval_every == 0 || (last && stop_signal == 0));
    if (evaluated) method.evaluate(rec);
    run.log(rec);
    if (step % cfg.log_every == 0 || last) {
      // the remaining steps at the recent pace, or the time limit if it comes first
      double eta = recent.mean() * double(cfg.steps - step);
      if (cfg.time_limit > 0) eta = std::min(eta, std::max(0.0, cfg.time_limit - session_s()));
      const std::string extra = evaluated && method.eval_progress ? method.eval_progress(rec) : "";
      std::fprintf(stderr, "step %lld/%lld | %s | ETA %s%s\n", (long long)step, (long long)cfg.steps,
                   method.progress(rec).c_str(), hms(eta).c_str(), extra.c_str());
    }
    const bool by_steps = cfg.save_every > 0 && step % cfg.save_every == 0;
    const bool by_time = cfg.save_minutes > 0 && session_s() - last_save_s >= 60.0 * cfg.save_minutes;
    if (by_steps || by_time || last) {
      method.save();
      run.render_charts();
      last_save_s = session_s();
    }
    if (stop_signal != 0) {
      std::fprintf(stderr, "%s at step %lld: checkpoint written; --resume %s continues the run\n",
                   stop_signal == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)", (long long)step,
                   run.path().c_str());
      throw Interrupted{stop_signal};
    }
    if (time_up) {
      std::fprintf(stderr, "time limit reached at step %lld\n", (long long)step);
      break;
    }
  }
  run.render_charts();
  run.publish_final();
  std::fprintf(stderr, "model at step %lld: %s/final (a Hugging Face folder)\n", (long long)step, run.path().c_str());
}

}  // namespace dseek
