#include "train/run_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string_view>

#include "core/error.h"
#include "core/fileio.h"
#include "core/json_util.h"
#include "core/model_folder.h"
#include "train/svg.h"

namespace dseek {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string RunDir::metrics_path() const { return path_join(path_, "metrics.jsonl"); }

bool RunDir::has_checkpoint() const { return has_latest_checkpoint(path_); }

std::string RunDir::latest_checkpoint() const {
  if (auto dir = latest_checkpoint_of(path_)) return *dir;
  fail("{}: no complete checkpoint to resume (missing {}: the run stopped before its first checkpoint was written); "
       "start it over with the command that created it (the same --out {})",
       path_, path_join(path_, "latest"), path_);
}

namespace {

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// "step-00000012" -> 12; -1 for any other name (temporaries, trash).
int64_t checkpoint_step(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || !all_digits(std::string_view(name).substr(5)) || name.size() > 23) return -1;
  return std::stoll(name.substr(5));
}

// A file written by write_file_atomic that was never renamed into place: NAME.tmp.PID.
bool is_temp_file(const std::string& name) {
  const size_t p = name.rfind(".tmp.");
  return p != std::string::npos && all_digits(std::string_view(name).substr(p + 5));
}

// A checkpoint being written (step-N.tmp) or being deleted (.trash-step-N).
bool is_temp_checkpoint(const std::string& name) {
  return name.rfind(".trash-", 0) == 0 || (name.rfind("step-", 0) == 0 && name.ends_with(".tmp"));
}

void remove_entries(const std::string& dir, const std::function<bool(const std::string&)>& stale) {
  if (!is_directory(dir)) return;
  std::vector<fs::path> doomed;
  for (const auto& e : fs::directory_iterator(dir))
    if (stale(e.path().filename().string())) doomed.push_back(e.path());
  std::error_code ec;
  for (const auto& p : doomed) fs::remove_all(p, ec);
}

// Renames folder PARENT/NAME to PARENT/.trash-NAME (removed on start by remove_stale_temporaries) and returns that
// path: a kill while it is being deleted leaves only trash, never a half-deleted folder under its own name.
std::string move_aside(const std::string& parent, const std::string& name) {
  const std::string dir = path_join(parent, name), trash = path_join(parent, ".trash-" + name);
  std::error_code ec;
  fs::remove_all(trash, ec);
  fs::rename(dir, trash, ec);
  if (ec) fail("{}: cannot move aside to delete it: {}", dir, ec.message());
  return trash;
}

void discard_checkpoint(const std::string& ckdir, const std::string& name) {
  std::error_code ec;
  fs::remove_all(move_aside(ckdir, name), ec);
}

}  // namespace

void RunDir::remove_stale_temporaries() const {
  remove_entries(path_, [](const std::string& name) { return is_temp_file(name) || name.rfind(".trash-", 0) == 0; });
  remove_entries(path_join(path_, "reference"), is_temp_file);
  remove_entries(path_join(path_, "checkpoints"), is_temp_checkpoint);
}

void RunDir::lock() const {
  // one lock per folder and process, held until the process exits (the kernel releases it even on kill -9)
  static std::mutex mu;
  static std::set<std::string> held;
  std::error_code ec;
  make_dirs(path_);
  const std::string key = fs::weakly_canonical(path_, ec).string();
  std::lock_guard<std::mutex> g(mu);
  if (held.count(key)) return;
  const std::string file = path_join(path_, ".lock");
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) fail("{}: cannot open: {}", file, std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    ::close(fd);
    fail("{}: in use by another dseek process{}; wait for it to end or use another folder", path_,
         n > 0 ? fmt::format(" (pid {})", std::string(buf, size_t(n))) : std::string());
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd, 0) == 0 && ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {}  // the pid is for the message only
  held.insert(key);
}

void RunDir::start_new() const {
  lock();
  if (has_checkpoint())
    fail("{}: already holds a run; use --resume {} to continue it, or another --out", path_, path_);
  const char* run_files[] = {"run.json", "metrics.jsonl", "checkpoints", "reference", "final", "loss.svg", "expert_load.svg",
                             "expert_load_last.svg", "reward.svg", "kl.svg"};
  // run.json or metrics.jsonl mark a run; other folders keep their files
  if (file_exists(path_join(path_, "run.json")) || file_exists(metrics_path())) {
    std::fprintf(stderr, "%s: holds a run that stopped before its first checkpoint; starting it over\n", path_.c_str());
    std::error_code ec;
    for (const char* f : run_files) fs::remove_all(path_join(path_, f), ec);
  }
  remove_stale_temporaries();
  make_dirs(path_);
}

void RunDir::log(const json& record) {
  std::ofstream f(metrics_path(), std::ios::app);
  if (!f) fail("{}: cannot append", metrics_path());
  f << record.dump() << "\n";
  f.flush();
}

std::vector<json> RunDir::read_metrics() const {
  std::vector<json> out;
  if (!file_exists(metrics_path())) return out;
  std::ifstream f(metrics_path());
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    json j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object()) out.push_back(std::move(j));  // a torn last line is dropped
  }
  return out;
}

void RunDir::truncate_metrics_after(int64_t step) {
  std::string kept;
  for (const json& j : read_metrics())
    if (j.value("step", int64_t(0)) <= step) kept += j.dump() + "\n";
  write_file_atomic(metrics_path(), kept);
}

std::string RunDir::save_checkpoint(int64_t step, const std::function<void(const std::string&)>& fill, int keep) {
  const std::string ckdir = path_join(path_, "checkpoints");
  make_dirs(ckdir);
  const std::string name = fmt::format("step-{:08d}", step);
  const std::string final_dir = path_join(ckdir, name), tmp = final_dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  make_dirs(tmp);
  fill(tmp);
  if (file_exists(final_dir)) discard_checkpoint(ckdir, name);
  fs::rename(tmp, final_dir, ec);
  if (ec) fail("{}: cannot rename checkpoint into place: {}", final_dir, ec.message());
  // RUN/latest: a link to the new checkpoint, made under a temporary name and renamed over the old one (atomic)
  const std::string latest = path_join(path_, "latest"), link = fmt::format("{}.tmp.{}", latest, ::getpid());
  fs::remove(link, ec);
  fs::create_directory_symlink("checkpoints/" + name, link, ec);
  if (ec) fail("{}: cannot create a link to {}: {}", link, final_dir, ec.message());
  fs::rename(link, latest, ec);
  if (ec) fail("{}: cannot rename to {}: {}", link, latest, ec.message());
  prune_checkpoints(ckdir, step, keep);
  return final_dir;
}

void RunDir::prune_checkpoints(const std::string& ckdir, int64_t newest, int keep) {
  if (keep <= 0) return;
  std::vector<std::pair<int64_t, std::string>> older;  // the other complete checkpoints
  for (const auto& e : fs::directory_iterator(ckdir)) {
    std::string n = e.path().filename().string();
    const int64_t s = checkpoint_step(n);
    if (s >= 0 && s != newest) older.emplace_back(s, std::move(n));
  }
  std::sort(older.begin(), older.end());
  int64_t kept = 1;  // `newest` itself
  for (auto it = older.rbegin(); it != older.rend(); ++it) {
    // folders past `newest` are left from a timeline that was resumed from an earlier checkpoint
    if (it->first < newest && kept < keep) kept++;
    else discard_checkpoint(ckdir, it->second);
  }
}

void RunDir::publish_final() const {
  const std::string from = latest_checkpoint(), to = path_join(path_, "final");
  const std::string tmp = fmt::format("{}.tmp.{}", to, ::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  make_dirs(tmp);
  for (const auto& e : fs::directory_iterator(from)) {
    const std::string name = e.path().filename().string();
    if (name == "optimizer.safetensors" || name == "trainer_state.json" || !e.is_regular_file()) continue;
    // a second name for the checkpoint's file (no copy of the weights); a copy where links are not supported
    fs::create_hard_link(e.path(), path_join(tmp, name), ec);
    if (ec) fs::copy_file(e.path(), path_join(tmp, name), ec);
    if (ec) fail("{}: cannot write {}: {}", tmp, name, ec.message());
  }
  // the old folder is renamed aside before the new one takes its name; a kill between leaves no final/ until the
  // next end of a run, never a partial one
  const std::string trash = fs::exists(to) ? move_aside(path_, "final") : "";
  fs::rename(tmp, to, ec);
  if (ec) fail("{}: cannot rename to {}: {}", tmp, to, ec.message());
  if (!trash.empty()) fs::remove_all(trash, ec);
}

RunDir::ResumePoint RunDir::resume_point(const std::string& settings_key, const json& overrides,
                                         const std::vector<std::string>& allowed,
                                         const std::vector<std::string>& state_keys) const {
  ResumePoint rp;
  rp.run_json = path_join(path_, "run.json");
  if (!file_exists(rp.run_json)) fail("{}: not a run folder (missing run.json)", path_);
  lock();
  remove_stale_temporaries();
  rp.run = json::parse(read_file(rp.run_json), nullptr, false);
  if (rp.run.is_discarded() || !rp.run.is_object() || !rp.run.contains(settings_key))
    fail("{}: corrupted (not a JSON object with '{}')", rp.run_json, settings_key);
  rp.settings = rp.run[settings_key];
  for (auto it = overrides.begin(); it != overrides.end(); ++it) {
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end())
      fail("{}: cannot be changed when resuming (the run's settings are in {})", setting_name(kFlagsOrigin, it.key()),
           rp.run_json);
    rp.settings[it.key()] = it.value();
  }
  rp.checkpoint = latest_checkpoint();
  const std::string state_path = path_join(rp.checkpoint, "trainer_state.json");
  if (!file_exists(state_path)) fail("{}: incomplete checkpoint (no trainer_state.json)", rp.checkpoint);
  rp.state = json::parse(read_file(state_path), nullptr, false);
  if (rp.state.is_discarded() || !rp.state.is_object()) fail("{}: corrupted trainer state", state_path);
  for (const auto& k : state_keys)
    if (!rp.state.contains(k)) fail("{}: corrupted trainer state (no '{}')", state_path, k);
  for (const char* f : {"optimizer.safetensors", "config.json"})
    if (!file_exists(path_join(rp.checkpoint, f))) fail("{}: incomplete checkpoint (no {})", rp.checkpoint, f);
  return rp;
}

namespace {
// "layer 3", or "layer 4 (MTP 1)" for an MTP block, from a record's moe_layers and mtp_first_layer.
std::vector<std::string> moe_layer_names(const json& record) {
  std::vector<std::string> names;
  const int64_t mtp_first = record.value("mtp_first_layer", std::numeric_limits<int64_t>::max());
  for (const json& l : record["moe_layers"]) {
    const int64_t i = l.get<int64_t>();
    names.push_back(i >= mtp_first ? fmt::format("layer {} (MTP {})", i, i - mtp_first + 1) : fmt::format("layer {}", i));
  }
  return names;
}
}  // namespace

void RunDir::render_charts() const {
  const auto records = read_metrics();
  if (records.empty()) return;
  Series train{"train loss", "#1f77b4", {}, {}}, mtp{"MTP loss", "#ff7f0e", {}, {}}, val{"val loss", "#2ca02c", {}, {}};
  std::vector<Series> load_series;
  const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                          "#bcbd22", "#17becf"};
  json last_load;
  std::vector<std::string> layer_names;  // of the rows of load_max_over_mean and expert_load
  for (const json& j : records) {
    const double step = j.value("step", 0.0);
    if (j.contains("loss")) {
      train.x.push_back(step);
      train.y.push_back(j["loss"].get<double>());
    }
    if (j.contains("mtp_loss") && j["mtp_loss"].get<double>() > 0) {
      mtp.x.push_back(step);
      mtp.y.push_back(j["mtp_loss"].get<double>());
    }
    if (j.contains("val_loss")) {
      val.x.push_back(step);
      val.y.push_back(j["val_loss"].get<double>());
    }
    if (j.contains("load_max_over_mean")) {
      const auto& v = j["load_max_over_mean"];
      if (j.contains("moe_layers")) layer_names = moe_layer_names(j);
      if (load_series.size() < v.size())
        for (size_t i = load_series.size(); i < v.size(); i++)
          load_series.push_back({i < layer_names.size() ? layer_names[i] : "MoE layer " + std::to_string(i), colors[i % 10], {}, {}});
      for (size_t i = 0; i < v.size(); i++) {
        load_series[i].x.push_back(step);
        load_series[i].y.push_back(v[i].get<double>());
      }
    }
    if (j.contains("expert_load")) last_load = j["expert_load"];
  }
  // GRPO: rewards and accuracy
  Series reward{"reward (mean)", "#1f77b4", {}, {}}, acc{"accuracy (samples)", "#ff7f0e", {}, {}},
      eval_acc{"held-out accuracy", "#2ca02c", {}, {}}, kl{"KL to reference", "#d62728", {}, {}};
  for (const json& j : records) {
    const double step = j.value("step", 0.0);
    auto add = [&](Series& s, const char* key) {
      if (j.contains(key)) {
        s.x.push_back(step);
        s.y.push_back(j[key].get<double>());
      }
    };
    add(reward, "reward_mean");
    add(acc, "accuracy");
    add(eval_acc, "eval_accuracy");
    add(kl, "kl");
  }
  if (!reward.x.empty()) {
    std::vector<Series> rs{reward};
    if (!acc.x.empty()) rs.push_back(acc);  // (a reward command's runs have no accuracy)
    if (!eval_acc.x.empty()) rs.push_back(eval_acc);
    write_file_atomic(path_join(path_, "reward.svg"), svg_line_chart("GRPO reward and accuracy", "step", "value", rs));
    write_file_atomic(path_join(path_, "kl.svg"), svg_line_chart("KL to the reference policy (k3)", "step", "KL", {kl}));
    return;
  }
  std::vector<Series> losses{train};
  if (!mtp.x.empty()) losses.push_back(mtp);
  if (!val.x.empty()) losses.push_back(val);
  write_file_atomic(path_join(path_, "loss.svg"), svg_line_chart("Loss", "step", "cross-entropy (nats)", losses));
  if (!load_series.empty()) {
    std::string svg = svg_line_chart("Expert load balance (max / mean tokens per expert)", "step", "max / mean", load_series);
    if (last_load.is_array()) {
      std::vector<std::vector<double>> rows;
      std::vector<std::string> labels;
      for (size_t i = 0; i < last_load.size(); i++) {
        rows.push_back(last_load[i].get<std::vector<double>>());
        labels.push_back(i < layer_names.size() ? layer_names[i] : "MoE layer " + std::to_string(i));
      }
      write_file_atomic(path_join(path_, "expert_load_last.svg"),
                        svg_heatmap("Tokens per expert at the last logged step", "MoE layer", labels, "expert",
                                    "tokens / mean", rows));
    }
    write_file_atomic(path_join(path_, "expert_load.svg"), svg);
  }
}

}  // namespace dseek
