#include "train/run_loop.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fmt/format.h>

namespace dseek {

using json = nlohmann::json;

std::string hms(double s) {
  const int64_t t = int64_t(s + 0.5);
  return t >= 3600 ? fmt::format("{}:{:02d}:{:02d}", t / 3600, (t / 60) % 60, t % 60)
                   : fmt::format("{}:{:02d}", t / 60, t % 60);
}

void run_loop(RunDir& run, const RunLoopConfig& cfg, const RunLoopMethod& method, int64_t& step, double& elapsed) {
  using clock = std::chrono::steady_clock;
  const auto session_start = clock::now();
  auto session_s = [&] { return std::chrono::duration<double>(clock::now() - session_start).count(); };
  double recent = 0;  // smoothed seconds per step
  if (step >= cfg.steps) {
    std::fprintf(stderr, "%s is already at step %lld (target %lld): nothing to train; pass a larger --steps to continue\n",
                 run.path().c_str(), (long long)step, (long long)cfg.steps);
    return;
  }
  while (step < cfg.steps) {
    const auto t0 = clock::now();
    json rec = method.step(step);
    step++;
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    elapsed += dt;
    recent = recent == 0 ? dt : 0.9 * recent + 0.1 * dt;
    rec["step"] = step;
    rec["step_s"] = dt;
    rec["elapsed_s"] = elapsed;
    const bool time_up = cfg.time_limit > 0 && session_s() >= cfg.time_limit;
    const bool last = step == cfg.steps || time_up;
    const bool evaluated = method.evaluate && cfg.eval_every > 0 && (step % cfg.eval_every == 0 || last);
    if (evaluated) method.evaluate(rec);
    run.log(rec);
    if (step % cfg.log_every == 0 || last) {
      // the remaining steps at the recent pace, or the time limit if it comes first
      double eta = recent * double(cfg.steps - step);
      if (cfg.time_limit > 0) eta = std::min(eta, std::max(0.0, cfg.time_limit - session_s()));
      const std::string extra = evaluated && method.eval_progress ? method.eval_progress(rec) : "";
      std::fprintf(stderr, "step %lld/%lld | %s | ETA %s%s\n", (long long)step, (long long)cfg.steps,
                   method.progress(rec).c_str(), hms(eta).c_str(), extra.c_str());
    }
    if ((cfg.save_every > 0 && step % cfg.save_every == 0) || last) {
      method.save();
      run.render_charts();
    }
    if (time_up) {
      std::fprintf(stderr, "time limit reached at step %lld\n", (long long)step);
      break;
    }
  }
  run.render_charts();
}

}  // namespace dseek
