#include "core/memory.h"

#include <malloc.h>

namespace dseek {

void keep_freed_memory() {
  static const bool done = [] {
    mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's upper limit for the threshold on 64-bit
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    return true;
  }();
  (void)done;
}

}  // namespace dseek
