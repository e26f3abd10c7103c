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
  auto api = [&](int status, const char* code) {
    return ApiError(status, e.reason().empty() ? code : e.reason(), e.what());
  };
  switch (e.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kBadImage:
      return api(400, "bad_request");
    case ErrorCode::kNotFound:
      return api(404, "not_found");
    case ErrorCode::kCrypto:
    case ErrorCode::kPermissionDenied:
      return api(403, "forbidden");
    case ErrorCode::kUnauthenticated:
      return api(401, "unauthenticated");
    case ErrorCode::kConflict:
      return api(409, "conflict");
    case ErrorCode::kTooLarge:
      return api(413, "too_large");
    case ErrorCode::kStorageFull:
      return api(507, "insufficient_storage");
    case ErrorCode::kLocked:
      return api(423, "locked");
    case ErrorCode::kUnavailable:
      return api(503, "unavailable");
    default:
      return api(500, "internal");
  }
}

}  // namespace anju::protocol
