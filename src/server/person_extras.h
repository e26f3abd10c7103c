// What a list of persons shows beside the identity data (the console's archives list):
// whether a usable face is on file and a thumbnail to show, and where the person lives.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "server/sqlite_db.h"

namespace anju::server {

// Adds to ITEMS[i] (the person whose row id is IDS[i]):
//   "features": feature codes on file (a usable face: the terminals can recognise the person),
//   "photos": enrolment photos on file,
//   "photo_id": the newest photo that gave a feature code (else the newest photo) or null,
//   "home": {"household_id", "household", "room", "unit", "building", "site"} of the
//           person's first household (names; null where the household has no room), or null.
// The caller holds the database mutex.
void AddFaceAndHome(Conn& conn, nlohmann::json& items, const std::vector<int64_t>& ids);

}  // namespace anju::server
