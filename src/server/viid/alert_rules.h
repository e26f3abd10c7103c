// Alert rules (docs/viid.md, "Alert rules"): what each type takes, the checks and defaults.
#pragma once

#include <nlohmann/json.hpp>

#include "server/viid/viid_types.h"

namespace anju::server::cameras {

// Minutes since local midnight at UTC+OFFSET_MINUTES.
int LocalMinute(int64_t ms, int offset_minutes);
// "HH:MM" → minutes since midnight; throws Error(kInvalidArgument) naming WHAT otherwise.
int ParseHhMm(const nlohmann::json& v, const char* what);

}  // namespace anju::server::cameras
