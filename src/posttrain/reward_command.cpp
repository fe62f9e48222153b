#include "posttrain/reward_command.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "core/error.h"

namespace dseek {

nlohmann::json reward_item(const TaskExample& ex, const std::string& completion) {
  return {{"prompt", ex.prompt}, {"completion", completion}, {"answer", ex.answer}, {"meta", ex.meta}};
}

std::optional<double> parse_reward_line(const std::string& raw) {
  const size_t b = raw.find_first_not_of(" \t\r"), e = raw.find_last_not_of(" \t\r");
  if (b == std::string::npos) return std::nullopt;
  const std::string line = raw.substr(b, e - b + 1);
  double v = 0;
  if (line[0] == '{') {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("reward") || !j["reward"].is_number()) return std::nullopt;
    v = j["reward"].get<double>();
  } else {
    char* end = nullptr;
    v = std::strtod(line.c_str(), &end);
    if (end != line.c_str() + line.size()) return std::nullopt;
  }
  if (!std::isfinite(v)) return std::nullopt;
  return v;
}

namespace {

// Blocks SIGPIPE in this thread while alive (a write to a closed pipe then fails with EPIPE instead of
// killing the process) and discards one that became pending.
struct SigpipeGuard {
  sigset_t set{}, old{};
  SigpipeGuard() {
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old);
  }
  ~SigpipeGuard() {
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGPIPE) && !sigismember(&old, SIGPIPE)) {
      timespec zero{0, 0};
      sigtimedwait(&set, nullptr, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
};

struct Fd {
  int fd = -1;
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) close(fd);
    fd = -1;
  }
};

}  // namespace

RewardCommand::RewardCommand(std::string command, double timeout_seconds)
    : command_(std::move(command)), timeout_(timeout_seconds) {
  if (command_.empty()) fail("reward command: empty");
}

std::vector<double> RewardCommand::score(const std::vector<nlohmann::json>& items) const {
  if (items.empty()) return {};
  std::string input;
  for (const auto& item : items) input += item.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";

  int in_p[2], out_p[2];
  if (pipe2(in_p, O_CLOEXEC) != 0) fail("reward command '{}': pipe: {}", command_, std::strerror(errno));
  Fd in_r{in_p[0]}, in_w{in_p[1]};
  if (pipe2(out_p, O_CLOEXEC) != 0) fail("reward command '{}': pipe: {}", command_, std::strerror(errno));
  Fd out_r{out_p[0]}, out_w{out_p[1]};
  SigpipeGuard guard;
  const char* cmd = command_.c_str();
  const pid_t pid = fork();
  if (pid < 0) fail("reward command '{}': fork: {}", command_, std::strerror(errno));
  if (pid == 0) {
    // child: only async-signal-safe calls; its own process group so a timeout kills its children too
    setpgid(0, 0);
    dup2(in_p[0], 0);
    dup2(out_p[1], 1);
    fcntl(0, F_SETFD, 0);
    fcntl(1, F_SETFD, 0);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execl("/bin/sh", "sh", "-c", cmd, static_cast<char*>(nullptr));
    _exit(127);
  }
  setpgid(pid, pid);  // also here, so that a kill right after fork finds the group
  in_r.reset();
  out_w.reset();
  fcntl(in_w.fd, F_SETFL, fcntl(in_w.fd, F_GETFL) | O_NONBLOCK);

  // Feed stdin and drain stdout together, so neither side blocks on a full pipe.
  const auto start = std::chrono::steady_clock::now();
  std::string output;
  size_t written = 0;
  bool timed_out = false;
  char buf[65536];
  while (out_r.fd >= 0) {
    pollfd fds[2];
    int nfds = 0;
    fds[nfds++] = {out_r.fd, POLLIN, 0};
    if (in_w.fd >= 0) fds[nfds++] = {in_w.fd, POLLOUT, 0};
    int wait_ms = -1;
    if (timeout_ > 0) {
      double left = timeout_ - std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (left <= 0) {
        timed_out = true;
        break;
      }
      wait_ms = int(std::ceil(left * 1000));
    }
    int r = poll(fds, nfds_t(nfds), wait_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) fail("reward command '{}': poll: {}", command_, std::strerror(errno));
    if (nfds == 2 && fds[1].revents) {
      ssize_t w = write(in_w.fd, input.data() + written, input.size() - written);
      if (w > 0) written += size_t(w);
      // done, or the command stopped reading (EPIPE): close its stdin either way
      if (written == input.size() || (w < 0 && errno != EAGAIN && errno != EINTR)) in_w.reset();
    }
    if (fds[0].revents) {
      ssize_t n = read(out_r.fd, buf, sizeof buf);
      if (n > 0) output.append(buf, size_t(n));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) out_r.reset();
    }
  }
  in_w.reset();
  out_r.reset();
  if (timed_out) kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) fail("reward command '{}': no result within {} s", command_, timeout_);
  if (WIFSIGNALED(status)) fail("reward command '{}': killed by signal {}", command_, WTERMSIG(status));
  if (WEXITSTATUS(status) != 0)
    fail("reward command '{}': exited with status {}{}", command_, WEXITSTATUS(status),
         WEXITSTATUS(status) == 127 ? " (command not found?)" : "");

  std::vector<double> rewards;
  size_t line_no = 0, pos = 0;
  while (pos < output.size()) {
    size_t nl = output.find('\n', pos);
    if (nl == std::string::npos) nl = output.size();
    std::string line = output.substr(pos, nl - pos);
    pos = nl + 1;
    line_no++;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto v = parse_reward_line(line);
    if (!v)
      fail("reward command '{}': output line {} is not a number or {{\"reward\": number}}: '{}'", command_, line_no,
           line.substr(0, 80));
    rewards.push_back(*v);
  }
  if (rewards.size() != items.size())
    fail("reward command '{}': wrote {} rewards for {} completions (one line per input line expected)", command_,
         rewards.size(), items.size());
  return rewards;
}

}  // namespace dseek
