// A user reward: a shell command (`/bin/sh -c CMD`) run once per batch. It reads one JSON object per line
// on stdin, {"prompt", "completion", "answer", "meta"}, and writes one reward per line on stdout: a number,
// or a JSON object {"reward": x}. Blank output lines are ignored; its stderr passes through.
//
//   RewardCommand rc("python3 my_reward.py");
//   std::vector<double> r = rc.score({reward_item(ex, completion), ...});
#pragma once
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "posttrain/task.h"

namespace dseek {

class RewardCommand {
 public:
  // timeout_seconds > 0: a batch that takes longer kills the command and is an error.
  explicit RewardCommand(std::string command, double timeout_seconds = 0);
  // One reward per item, in order. A non-zero exit, a wrong number of lines or a line that is not a number
  // is an error naming the command.
  std::vector<double> score(const std::vector<nlohmann::json>& items) const;
  const std::string& command() const { return command_; }

 private:
  std::string command_;
  double timeout_;
};

// {"prompt", "completion", "answer", "meta"} for one completion of an example.
nlohmann::json reward_item(const TaskExample& ex, const std::string& completion);

// One output line of a reward command as a number: a finite number or {"reward": number}; nullopt otherwise.
std::optional<double> parse_reward_line(const std::string& line);

}  // namespace dseek
