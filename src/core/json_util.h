// JSON helpers shared by readers of user files: JSON Lines iteration and typed fields with clear errors.
#pragma once
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>

#include "core/error.h"

namespace dseek {

// Calls fn(object, line number) for every non-blank line of a JSON Lines file; a line that is not a JSON
// object is an error naming the file and line.
void for_each_json_line(const std::string& path, const std::function<void(const nlohmann::json&, size_t)>& fn);

// dst = j[key] if present, checking the JSON type against dst's type (text, true/false, number).
template <class T>
void read_field(const nlohmann::json& j, const char* key, T& dst, const std::string& origin) {
  if (!j.contains(key)) return;
  const nlohmann::json& v = j[key];
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) fail("{}: setting '{}' must be text", origin, key);
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) fail("{}: setting '{}' must be true or false", origin, key);
  } else {
    if (!v.is_number()) fail("{}: setting '{}' must be a number", origin, key);
  }
  dst = v.get<T>();
}

// Every key of `j` must be a key of `known`.
void check_known_keys(const nlohmann::json& j, const nlohmann::json& known, const std::string& origin, const char* what);

}  // namespace dseek
