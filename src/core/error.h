// Errors: one exception type whose message is the single line shown to the user.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace dseek {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class... Args>
[[noreturn]] inline void fail(fmt::format_string<Args...> fmt, Args&&... args) {
  throw Error(fmt::format(fmt, std::forward<Args>(args)...));
}

#define DSEEK_CHECK(cond, ...)               \
  do {                                       \
    if (!(cond)) ::dseek::fail(__VA_ARGS__); \
  } while (0)

}  // namespace dseek
