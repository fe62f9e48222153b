#include "core/profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace dseek {

namespace {
struct Table {
  std::mutex mu;
  std::map<std::string, std::pair<double, long>> totals;
  ~Table() {
    if (totals.empty()) return;
    std::vector<std::pair<std::string, std::pair<double, long>>> rows(totals.begin(), totals.end());
    std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.first > b.second.first; });
    std::fprintf(stderr, "%-32s %10s %10s %10s\n", "profile", "seconds", "calls", "us/call");
    for (auto& [name, v] : rows)
      std::fprintf(stderr, "%-32s %10.4f %10ld %10.2f\n", name.c_str(), v.first, v.second, v.first / double(v.second) * 1e6);
  }
};
Table& table() {
  static Table t;
  return t;
}
}  // namespace

bool profiling_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("DSEEK_PROFILE");
    return e && *e && *e != '0';
  }();
  return on;
}

void profile_add(const char* name, double seconds) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  auto& v = t.totals[name];
  v.first += seconds;
  v.second++;
}

}  // namespace dseek
