// Errors of the OpenAI-compatible API: an HTTP status and OpenAI's error object
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
// which OpenAI's client libraries turn into their error classes (400 BadRequestError, 401 AuthenticationError,
// 404 NotFoundError, 429 RateLimitError, 5xx InternalServerError).
#pragma once
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace dseek::serve {

struct ApiError : std::runtime_error {
  int status;
  std::string type, param, code;  // param and code: empty means null
  ApiError(int status, std::string message, std::string param = "", std::string code = "",
           std::string type = "invalid_request_error")
      : std::runtime_error(std::move(message)), status(status), type(std::move(type)), param(std::move(param)),
        code(std::move(code)) {}
};

// A 400 about request field `param`.
[[noreturn]] inline void bad_field(const std::string& param, const std::string& message,
                                   const std::string& code = "invalid_value") {
  throw ApiError(400, message, param, code);
}

inline nlohmann::json error_json(const std::string& message, const std::string& type, const std::string& param,
                                 const std::string& code) {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
            {"code", code.empty() ? nlohmann::json(nullptr) : nlohmann::json(code)}}}};
}
inline nlohmann::json error_json(const ApiError& e) { return error_json(e.what(), e.type, e.param, e.code); }

}  // namespace dseek::serve
