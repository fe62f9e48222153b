// Scoped wall-clock timers by name, enabled with DSEEK_PROFILE=1; a summary table is printed at exit.
#pragma once
#include <chrono>

namespace dseek {

bool profiling_enabled();
void profile_add(const char* name, double seconds);

class ProfileScope {
 public:
  explicit ProfileScope(const char* name) : name_(profiling_enabled() ? name : nullptr) {
    if (name_) t0_ = std::chrono::steady_clock::now();
  }
  ~ProfileScope() {
    if (name_) profile_add(name_, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count());
  }

 private:
  const char* name_;
  std::chrono::steady_clock::time_point t0_;
};

#define DSEEK_PROFILE_CAT2(a, b) a##b
#define DSEEK_PROFILE_CAT(a, b) DSEEK_PROFILE_CAT2(a, b)
#define DSEEK_PROFILE(name) ::dseek::ProfileScope DSEEK_PROFILE_CAT(dseek_profile_, __LINE__)(name)

}  // namespace dseek
