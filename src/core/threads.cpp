#include "core/threads.h"

#include <omp.h>

#include <thread>

namespace dseek {

int num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
  if (n <= 0) n = int(std::thread::hardware_concurrency());
  omp_set_num_threads(n < 1 ? 1 : n);
}

int thread_index() { return omp_get_thread_num(); }

}  // namespace dseek
