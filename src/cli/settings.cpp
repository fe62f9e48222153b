#include "cli/settings.h"

#include "core/error.h"
#include "core/fileio.h"
#include "train/mixed_precision.h"

namespace dseek::cli {

using json = nlohmann::json;

json parse_setting_value(const std::string& v) {
  json j = json::parse(v, nullptr, false);
  if (!j.is_discarded() && (j.is_number() || j.is_boolean() || j.is_null())) return j;
  std::string s = v;
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) s = s.substr(1, s.size() - 2);
  return s;
}

json read_settings_file(const std::string& path) {
  std::string text = read_file(path);
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail("{}: not a valid JSON object", path);
    return j;
  }
  json out = json::object();
  size_t pos = 0, line_no = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    line_no++;
    if (auto h = line.find('#'); h != std::string::npos) line = line.substr(0, h);
    const auto a = line.find_first_not_of(" \t\r"), b = line.find_last_not_of(" \t\r");
    if (a == std::string::npos) {
      if (end == text.size()) break;
      continue;
    }
    line = line.substr(a, b - a + 1);
    const auto colon = line.find(':');
    if (colon == std::string::npos) fail("{}:{}: expected 'key: value'", path, line_no);
    std::string key = line.substr(0, colon), value = line.substr(colon + 1);
    key.erase(key.find_last_not_of(" \t") + 1);
    value.erase(0, value.find_first_not_of(" \t"));
    for (auto& ch : key)
      if (ch == '-') ch = '_';
    out[key] = parse_setting_value(value);
    if (end == text.size()) break;
  }
  return out;
}

json gather_settings(const std::string& hparams_file, const SettingFlags& flags) {
  json settings = hparams_file.empty() ? json::object() : read_settings_file(hparams_file);
  flags.overlay(settings);
  return settings;
}

const std::vector<std::pair<std::string, std::string>>& training_setting_flags() {
  static const std::vector<std::pair<std::string, std::string>> flags{
      {"steps", "Optimizer steps to reach (with --resume: the new target)"},
      {"batch_size", "Sequences (rows) per micro-batch"},
      {"seq_len", "Tokens per sequence"},
      {"grad_accum", "Micro-batches per optimizer step"},
      {"lr", "Peak learning rate"},
      {"min_lr_ratio", "Final learning rate as a fraction of --lr (cosine, wsd)"},
      {"warmup", "Linear warm-up steps"},
      {"schedule", "constant, cosine or wsd (warmup-stable-decay)"},
      {"decay_steps", "Horizon of cosine/wsd (default: --steps of the new run)"},
      {"decay_fraction", "wsd: fraction of the horizon spent decaying"},
      {"weight_decay", "AdamW decoupled weight decay (matrices and embeddings)"},
      {"grad_clip", "Global gradient-norm clip (0: off)"},
      {"seed", "Seed for initialisation and data order"},
      {"save_every", "Checkpoint every N steps (0: by --save-minutes only); always at the end and on SIGINT/SIGTERM"},
      {"save_minutes", "Also checkpoint when this many minutes passed since the last checkpoint (0: off)"},
      {"keep_checkpoints", "Checkpoints to keep"},
      {"eval_every", "Validation every N steps (0: off)"},
      {"eval_batches", "Validation batches"},
      {"log_every", "Progress line every N steps"},
      {"mtp_lambda", "Weight of the multi-token-prediction loss"},
      {"aux_alpha", "Weight of the sequence-wise balance loss (0: off)"},
      {"bias_gamma", "Speed of the auxiliary-loss-free routing bias (0: off)"},
      {"distill_weight", "Weight of the KL to a teacher's top-k (distillation with --top-k)"},
      {"time_limit", "Stop (and checkpoint) after this many seconds (0: no limit)"}};
  static const std::vector<std::pair<std::string, std::string>> all = [] {
    auto v = flags;
    v.insert(v.end(), precision_setting_flags().begin(), precision_setting_flags().end());
    return v;
  }();
  return all;
}

void SettingFlags::add_to(CLI::App& sub, const std::vector<std::pair<std::string, std::string>>& settings,
                          const json& defaults) {
  for (const auto& [name, help] : settings) {
    std::string flag = "--" + name;
    for (auto& ch : flag)
      if (ch == '_') ch = '-';
    CLI::Option* opt = sub.add_option(flag, values_[name], help);
    options_[name] = opt;
    // help shows the type and the default (only for display: a flag counts as given only when it is typed)
    const auto it = defaults.find(name);
    if (it == defaults.end() || help.find("(default") != std::string::npos) continue;
    if (it->is_number_integer()) opt->type_name("INT");
    else if (it->is_number()) opt->type_name("FLOAT");
    if (it->is_string()) {
      if (!it->get<std::string>().empty()) opt->default_str(it->get<std::string>());
    } else if (!it->is_null()) {
      opt->default_str(it->dump());
    }
  }
}

void SettingFlags::overlay(json& settings) const {
  for (const auto& [name, opt] : options_)
    if (opt->count() > 0) settings[name] = parse_setting_value(values_.at(name));
}

}  // namespace dseek::cli
