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
};

const char* ErrorCodeName(ErrorCode code);

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace anju
