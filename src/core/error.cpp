#include "core/error.h"

namespace anju {

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInvalidArgument:
      return "invalid_argument";
    case ErrorCode::kBadImage:
      return "bad_image";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kModel:
      return "model";
    case ErrorCode::kIo:
      return "io";
    case ErrorCode::kCrypto:
      return "crypto";
    case ErrorCode::kCorrupt:
      return "corrupt";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kInternal:
      return "internal";
    case ErrorCode::kUnauthenticated:
      return "unauthenticated";
    case ErrorCode::kPermissionDenied:
      return "forbidden";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kTooLarge:
      return "too_large";
    case ErrorCode::kStorageFull:
      return "insufficient_storage";
    case ErrorCode::kLocked:
      return "locked";
  }
  return "unknown";
}

}  // namespace anju
