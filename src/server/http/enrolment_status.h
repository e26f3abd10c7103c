// The HTTP statuses of enrolment (enrolment/enrolment_service.h): the enrolment domain
// returns refusals as anju::Error and records an import's photos by their outcome; which
// status a client sees is decided here, at the edge.
#pragma once

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace anju::server {

// The status a refusal E (or a success, when E is null) is answered with: 201 on success,
// 422 for a photo the quality gate refused (reason "quality_rejected"), otherwise the
// error's (protocol/api_error.h).
int EnrolStatus(const Error* e);

// An import as GET /imports/{id} answers it (docs/server-api.md, "imports"): every photo
// result gets its "status" from its outcome (EnrolStatus).
nlohmann::json ImportWithStatuses(nlohmann::json import);

}  // namespace anju::server
