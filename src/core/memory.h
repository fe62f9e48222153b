// Process-wide allocator settings for step loops that free and reallocate the same large buffers.
#pragma once
#include <cstddef>
#include <vector>

namespace dseek {

// Grows v to at least n elements (never shrinks: step loops reuse the largest size) and returns its data.
template <class T>
T* grow(std::vector<T>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// glibc malloc: serve blocks up to 32 MiB from the heap and never return freed heap memory to the system, so
// the activations of one step reuse the pages of the previous one (no page faults and kernel zeroing per step).
// Idempotent.
void keep_freed_memory();

}  // namespace dseek
