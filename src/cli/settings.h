// Hyper-parameter flags shared by the trainers: each flag --some-name maps to the setting "some_name"; values
// given on the command line override a settings file (JSON, or "key: value" lines).
#pragma once
#include <CLI/CLI.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dseek::cli {

nlohmann::json read_settings_file(const std::string& path);

class SettingFlags {
 public:
  // `defaults` (a config's to_json()) gives the value shown in --help for each flag it holds.
  void add_to(CLI::App& sub, const std::vector<std::pair<std::string, std::string>>& settings,
              const nlohmann::json& defaults = nlohmann::json::object());
  // Writes every flag given on the command line into `settings` (numbers and booleans typed).
  void overlay(nlohmann::json& settings) const;

 private:
  std::map<std::string, std::string> values_;
  std::map<std::string, CLI::Option*> options_;
};

nlohmann::json parse_setting_value(const std::string& v);

// The settings file (if any) overlaid with the flags given on the command line.
nlohmann::json gather_settings(const std::string& hparams_file, const SettingFlags& flags);

// The trainer's settings as flags (dseek train and dseek sft).
const std::vector<std::pair<std::string, std::string>>& training_setting_flags();

}  // namespace dseek::cli
