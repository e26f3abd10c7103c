#include "server/http/enrolment_status.h"

#include <optional>
#include <string>

#include "protocol/api_error.h"

namespace anju::server {

using nlohmann::json;

namespace {

// The ErrorCode whose ErrorCodeName is NAME.
std::optional<ErrorCode> CodeNamed(const std::string& name) {
  for (int i = 0; i <= int(ErrorCode::kLocked); ++i)
    if (name == ErrorCodeName(ErrorCode(i))) return ErrorCode(i);
  return std::nullopt;
}

}  // namespace

int EnrolStatus(const Error* e) {
  if (!e) return 201;
  if (e->reason() == "quality_rejected") return 422;
  return protocol::FromError(*e).status();
}

json ImportWithStatuses(json import) {
  auto results = import.find("results");
  if (results == import.end() || !results->is_array()) return import;
  for (json& row : *results) {
    auto photos = row.find("photos");
    if (photos == row.end() || !photos->is_array()) continue;
    for (json& photo : *photos) {
      if (!photo.is_object()) continue;
      // "refused": the ErrorCode name the enrolment recorded (enrolment/import.cpp); a
      // report saved before it carries its "status" already.
      const auto refused = photo.find("refused");
      if (refused == photo.end()) {
        if (!photo.contains("status")) photo["status"] = EnrolStatus(nullptr);
        continue;
      }
      std::string reason;
      if (const auto error = photo.find("error");
          error != photo.end() && error->is_object() && error->contains("code"))
        reason = error->value("code", "");
      const auto code = CodeNamed(refused->is_string() ? refused->get<std::string>() : "");
      const Error e(code.value_or(ErrorCode::kInternal), "", reason);
      photo.erase("refused");
      photo["status"] = EnrolStatus(&e);
    }
  }
  return import;
}

}  // namespace anju::server
