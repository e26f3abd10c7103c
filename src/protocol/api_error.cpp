#include "protocol/api_error.h"

#include <nlohmann/json.hpp>

namespace anju::protocol {

std::string ErrorBody(std::string_view code, std::string_view message) {
  nlohmann::json j;
  j["error"] = {{"code", code}, {"message", message}};
  // Replace invalid UTF-8 rather than throw: messages may quote client input.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ApiError FromError(const Error& e) {
  switch (e.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kBadImage:
      return ApiError(400, "bad_request", e.what());
    case ErrorCode::kNotFound:
      return ApiError(404, "not_found", e.what());
    case ErrorCode::kCrypto:
      return ApiError(403, "forbidden", e.what());
    case ErrorCode::kUnavailable:
      return ApiError(503, "unavailable", e.what());
    default:
      return ApiError(500, "internal", e.what());
  }
}

}  // namespace anju::protocol
