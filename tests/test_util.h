// Helpers shared by the tests: paths to the shared reference data and the built CLI, temp folders.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/error.h"

namespace dseek::test {

// ../shared next to the project (DSEEK_SHARED overrides).
inline std::string shared_dir() {
  if (const char* s = std::getenv("DSEEK_SHARED")) return s;
  return std::string(DSEEK_SOURCE_DIR) + "/../shared";
}
inline std::string source_dir() { return DSEEK_SOURCE_DIR; }
inline std::string dseek_binary() { return DSEEK_BINARY; }

// A fresh folder under the system temp dir, removed at destruction.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("dseek_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter()++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string str() const { return path.string(); }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

// Message of the dseek::Error that `f` throws ("" when it does not throw).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

struct CommandResult {
  int status;
  std::string out;  // stdout and stderr
};
// Runs the dseek binary with `args` (a shell-quoted string).
CommandResult run_dseek(const std::string& args);
// Runs a shell command line, stdout and stderr together.
CommandResult run_shell(const std::string& command);

}  // namespace dseek::test
