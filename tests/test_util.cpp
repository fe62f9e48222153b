#include "test_util.h"

#include <sys/wait.h>

#include <array>
#include <cstdio>

namespace dseek::test {

CommandResult run_dseek(const std::string& args) {
  std::string cmd = dseek_binary() + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  CommandResult r{-1, ""};
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

}  // namespace dseek::test
