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

// Frees v's memory (a cache that is not needed in this mode).
template <class T>
void release(std::vector<T>& v) {
  std::vector<T>().swap(v);
}

// glibc malloc: serve blocks up to 32 MiB from the heap and never return freed heap memory to the system, so
// the activations of one step reuse the pages of the previous one (no page faults and kernel zeroing per step).
// Idempotent.
void keep_freed_memory();

// The process's peak resident memory so far, MiB (getrusage's ru_maxrss).
double peak_rss_mib();

}  // namespace dseek
