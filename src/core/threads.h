// Thread layer: OpenMP (shared with oneDNN, so the two never oversubscribe the cores).
#pragma once
#include <cstdint>

namespace dseek {

int num_threads();
void set_num_threads(int n);  // n <= 0: all cores
int thread_index();           // inside a parallel region

// Splits [0, n) into `parts` contiguous chunks; returns chunk `i` as [begin, end).
inline void split_range(int64_t n, int parts, int i, int64_t& begin, int64_t& end) {
  int64_t base = n / parts, rem = n % parts;
  begin = i * base + (i < rem ? i : rem);
  end = begin + base + (i < rem ? 1 : 0);
}

}  // namespace dseek
