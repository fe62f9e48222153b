// Process-wide allocator settings for step loops that free and reallocate the same large buffers.
#pragma once

namespace dseek {

// glibc malloc: serve blocks up to 32 MiB from the heap and never return freed heap memory to the system, so
// the activations of one step reuse the pages of the previous one (no page faults and kernel zeroing per step).
// Idempotent.
void keep_freed_memory();

}  // namespace dseek
