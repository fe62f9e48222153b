#include "core/json_util.h"

#include "core/fileio.h"

namespace dseek {

void for_each_json_line(const std::string& path, const std::function<void(const nlohmann::json&, size_t)>& fn) {
  const std::string text = read_file(path);
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    line_no++;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) fail("{}:{}: not a JSON object", path, line_no);
    fn(j, line_no);
  }
}

std::string setting_name(const std::string& origin, std::string_view key) {
  std::string flag = "--" + std::string(key);
  for (char& ch : flag)
    if (ch == '_') ch = '-';
  if (origin == kFlagsOrigin) return flag;
  return fmt::format("{}: setting '{}' ({})", origin, key, flag);
}

void check_known_keys(const nlohmann::json& j, const nlohmann::json& known, const std::string& origin, const char* what) {
  if (!j.is_object()) fail("{}: {} must be a JSON object", origin, what);
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.contains(it.key())) fail("{}: unknown {} '{}'", origin, what, it.key());
}

}  // namespace dseek
