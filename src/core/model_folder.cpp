#include "core/model_folder.h"

#include "core/error.h"
#include "core/fileio.h"

namespace dseek {

std::optional<std::string> latest_checkpoint_of(const std::string& run) {
  const std::string latest = path_join(run, "latest");
  if (!file_exists(latest)) return std::nullopt;
  std::string name = read_file(latest);
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  if (name.empty() || name.find("..") != std::string::npos || name.front() == '/')
    fail("{}: does not name a checkpoint folder", latest);
  const std::string dir = path_join(run, name);
  if (!is_directory(dir)) fail("{}: names {}, which does not exist", latest, dir);
  return dir;
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
