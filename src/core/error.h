// Error type shared by every module: a stable machine-readable code plus a message
// meant for people (Chinese first where it reaches end users, English in logs).
#pragma once

#include <stdexcept>
#include <string>

namespace anju {

enum class ErrorCode {
  kInvalidArgument,  // caller passed something malformed
  kBadImage,         // image cannot be decoded, is empty, truncated or too large
  kNotFound,         // a file or record does not exist
  kModel,            // a model file is missing, corrupt or does not load
  kIo,               // the file system refused
  kCrypto,           // wrong key, tampered data, bad signature
  kCorrupt,          // stored data failed an integrity check
  kUnavailable,      // a peer is gone or a resource is exhausted
  kInternal,
  // Refusals of a request, named so that the edge (HTTP) can answer each its own way.
  kUnauthenticated,   // no or bad credentials
  kPermissionDenied,  // known caller, not allowed
  kConflict,          // the state does not allow it (already decided, duplicate)
  kTooLarge,          // a body, batch or image beyond the limit
  kStorageFull,       // the disk or the quota is full: nothing was stored
  kLocked,            // locked for a while (an account after failed logins) or for review
};

const char* ErrorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  // REASON: an optional machine-readable refinement that APIs pass on as their error code
  // ("weak_password", "totp_required", ...); empty = derived from CODE.
  Error(ErrorCode code, const std::string& message, std::string reason = {})
      : std::runtime_error(message), code_(code), reason_(std::move(reason)) {}
  ErrorCode code() const { return code_; }
  const std::string& reason() const { return reason_; }

 private:
  ErrorCode code_;
  std::string reason_;
};

}  // namespace anju
