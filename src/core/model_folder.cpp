#include "core/model_folder.h"

#include <filesystem>

#include "core/error.h"
#include "core/fileio.h"

namespace dseek {

namespace fs = std::filesystem;

std::optional<std::string> latest_checkpoint_of(const std::string& run) {
  const fs::path latest = fs::path(run) / "latest";
  std::error_code ec;
  std::string name;
  if (fs::is_symlink(latest, ec)) {
    name = fs::read_symlink(latest, ec).string();
  } else if (fs::is_regular_file(latest, ec)) {  // runs written before `latest` became a link: a file naming it
    name = read_file(latest.string());
    while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  } else {
    return std::nullopt;
  }
  if (name.empty() || name.find("..") != std::string::npos || name.front() == '/')
    fail("{}: does not name a checkpoint folder inside the run", latest.string());
  const std::string dir = path_join(run, name);
  if (!is_directory(dir)) fail("{}: names {}, which does not exist", latest.string(), dir);
  return dir;
}

bool has_latest_checkpoint(const std::string& run) {
  std::error_code ec;
  return fs::exists(fs::symlink_status(fs::path(run) / "latest", ec));
}

std::string resolve_model_dir(const std::string& path) {
  if (!file_exists(path)) fail("{}: no such model folder", path);
  if (!is_directory(path)) fail("{}: not a folder (expected config.json and *.safetensors inside)", path);
  if (file_exists(path_join(path, "config.json"))) return path;
  if (const auto dir = latest_checkpoint_of(path)) {
    if (!file_exists(path_join(*dir, "config.json"))) fail("{}/latest: names {}, which has no config.json", path, *dir);
    return *dir;
  }
  fail("{}: no config.json (and not a training run with a 'latest' checkpoint)", path);
}

}  // namespace dseek
