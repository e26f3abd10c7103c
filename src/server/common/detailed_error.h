// An anju::Error whose answer carries more fields than code and message ("until_ms" of a
// lockout, the quality "reasons" of a refused photo, duplicate "candidates"). Services throw
// it; the HTTP edge adds EXTRA to the error object.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/error.h"

namespace anju::server {

class DetailedError : public Error {
 public:
  DetailedError(ErrorCode code, const std::string& message, std::string reason,
                nlohmann::json extra)
      : Error(code, message, std::move(reason)), extra_(std::move(extra)) {}
  const nlohmann::json& extra() const { return extra_; }

 private:
  nlohmann::json extra_;
};

}  // namespace anju::server
