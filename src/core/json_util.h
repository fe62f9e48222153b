// JSON helpers shared by readers of user files: JSON Lines iteration and typed fields with clear errors.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/error.h"

namespace dseek {

// Calls fn(object, line number) for every non-blank line of a JSON Lines file; a line that is not a JSON
// object is an error naming the file and line.
void for_each_json_line(const std::string& path, const std::function<void(const nlohmann::json&, size_t)>& fn);

// v as an integer of type T when it is a whole number T can hold (JSON integers, or floats like 4.0), else none.
template <class T>
std::optional<T> integer_value(const nlohmann::json& v) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<T>::max())) return std::nullopt;
    return T(u);
  }
  if (v.is_number_integer()) {
    const int64_t i = v.get<int64_t>();
    if (i < int64_t(std::numeric_limits<T>::min()) ||
        (i > 0 && uint64_t(i) > uint64_t(std::numeric_limits<T>::max())))
      return std::nullopt;
    return T(i);
  }
  if (!v.is_number_float()) return std::nullopt;
  const double d = v.get<double>();
  // the bounds are exact powers of two, so comparing in double is exact
  if (!(d == std::floor(d)) || d < double(std::numeric_limits<T>::min()) ||
      d >= 2.0 * double(std::numeric_limits<T>::max() / 2 + 1))
    return std::nullopt;
  return T(d);
}

// The origin of settings that came from command-line flags only (no settings file).
inline constexpr const char* kFlagsOrigin = "flags";

// How an error names setting `key` ("batch_size"): as the user typed it, "--batch-size" when the settings came
// from flags, "FILE: setting 'batch_size' (--batch-size)" when from a settings file.
std::string setting_name(const std::string& origin, std::string_view key);

// dst = j[key] if present, checking the JSON type against dst's type (text, true/false, number; integers must be
// whole numbers in range: 1e300 or 2.5 is an error quoting the value, never a wrapped cast).
template <class T>
void read_field(const nlohmann::json& j, const char* key, T& dst, const std::string& origin) {
  if (!j.contains(key)) return;
  const nlohmann::json& v = j[key];
  if constexpr (std::is_same_v<T, std::string>) {
    if (!v.is_string()) fail("{}: must be text", setting_name(origin, key));
    dst = v.get<T>();
  } else if constexpr (std::is_same_v<T, bool>) {
    if (!v.is_boolean()) fail("{}: must be true or false", setting_name(origin, key));
    dst = v.get<T>();
  } else if constexpr (std::is_integral_v<T>) {
    if (!v.is_number()) fail("{}: must be a number", setting_name(origin, key));
    const auto value = integer_value<T>(v);
    if (!value) fail("{}: must be a whole number in [{}, {}], got {}", setting_name(origin, key),
                     std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), v.dump());
    dst = *value;
  } else {
    if (!v.is_number()) fail("{}: must be a number", setting_name(origin, key));
    dst = v.get<T>();
  }
}

// Every key of `j` must be a key of `known`.
void check_known_keys(const nlohmann::json& j, const nlohmann::json& known, const std::string& origin, const char* what);

}  // namespace dseek
