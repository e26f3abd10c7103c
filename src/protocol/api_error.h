// The error shape every anju HTTP API answers with (server API, device protocol, the
// terminal's status page): HTTP status + {"error": {"code": "...", "message": "..."}}.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

#include "core/error.h"

namespace anju::protocol {

// Thrown by request handlers; the HTTP layer turns it into the JSON body.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(std::move(code)) {}
  int status() const { return status_; }
  const std::string& code() const { return code_; }

 private:
  int status_;
  std::string code_;
};

// {"error":{"code":CODE,"message":MESSAGE}}
std::string ErrorBody(std::string_view code, std::string_view message);

// The HTTP status and API code for an anju::Error escaping a handler (kInvalidArgument →
// 400 bad_request, kUnauthenticated → 401, kCrypto / kPermissionDenied → 403 forbidden,
// kNotFound → 404, kConflict → 409, kTooLarge → 413, kLocked → 423, kUnavailable → 503,
// kStorageFull → 507 insufficient_storage, anything else → 500 internal); the error's
// reason, when set, is the API code.
ApiError FromError(const Error& e);

}  // namespace anju::protocol
