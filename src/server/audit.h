// The append-only audit table (actor, action, object, detail, time) and the per-person
// history (move-in, move-out, changes). Issue 7 hardens the audit log (hash chain,
// export); callers already write every administrative change through here.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "server/sqlite_db.h"

namespace anju::server {

int64_t NowMs();

// Caller holds db.mutex().
void Audit(Database& db, const std::string& actor, const std::string& action,
           const std::string& object, const nlohmann::json& detail = nlohmann::json::object());
void History(Database& db, int64_t person_id, const std::string& action, const std::string& actor,
             const nlohmann::json& detail = nlohmann::json::object());

}  // namespace anju::server
