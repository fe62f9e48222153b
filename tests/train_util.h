// Helpers of the training tests: a token data folder, a run's metrics, and dseek runs as child processes.
#pragma once
#include <sys/types.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/fileio.h"
#include "core/rng.h"
#include "test_util.h"
#include "train/data.h"

namespace dseek::test {

// A token data folder with random "documents" over a 512-token vocabulary.
inline std::string make_token_data(const TempDir& d) {
  const std::string dir = d / "data";
  make_dirs(dir);
  Rng r(5);
  std::vector<int32_t> train(20000), val(3000);
  for (auto& t : train) t = int32_t(2 + r.below(40));  // a small alphabet so the loss can fall
  for (auto& t : val) t = int32_t(2 + r.below(40));
  write_token_shard(dir + "/train-00000.tok", train, 512);
  write_token_shard(dir + "/val-00000.tok", val, 512);
  write_file_atomic(dir + "/meta.json", nlohmann::json{{"vocab_size", 512}, {"eos_id", 1}}.dump());
  return dir;
}

// RUN/metrics.jsonl, one object per line.
inline std::vector<nlohmann::json> run_metrics(const std::string& run) {
  std::vector<nlohmann::json> out;
  std::ifstream f(run + "/metrics.jsonl");
  std::string line;
  while (std::getline(f, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

// Starts the dseek binary with `args` (split at spaces) as a child process, output appended to `log`.
pid_t spawn_dseek(const std::string& args, const std::string& log);
// Waits for the child; its exit code, or 128 + signal if a signal ended it.
int wait_child(pid_t pid);
// Whether the child has ended (reaped; `status` as wait_child reports it).
bool child_ended(pid_t pid, int& status);

}  // namespace dseek::test
