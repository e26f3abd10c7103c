// The site's security levels sent by the server with gallery sync (docs/device-protocol.md,
// "thresholds" of the gallery answer; docs/matching.md, "Per-site calibration"): the server
// recalibrates each site's levels on its own gallery as it grows, and the site's terminals
// decide with them. They are laid over the terminal's own thresholds file, never under it: a
// level only becomes stricter (a wrong or hostile answer cannot loosen a door).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>

#include "match/thresholds.h"

namespace anju::terminal {

// FILE's levels with SITE's ({"model_version", "levels": {"high": {"threshold", "margin"},
// …}}) laid over them: per level the larger threshold and margin. Throws
// Error(kInvalidArgument) when SITE is malformed or made for another model version.
match::Thresholds MergeSiteLevels(const match::Thresholds& file, const nlohmann::json& site);

// Where a terminal keeps the last levels received (its data directory), so that a restart
// without the server decides as before (offline keeps recognition, R3.1.2.7).
std::filesystem::path SiteLevelsFile(const std::filesystem::path& data_dir);

}  // namespace anju::terminal
