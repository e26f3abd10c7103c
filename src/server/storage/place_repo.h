// The places of the archive and the groups that hang off them in archive.db (schema:
// archive_schema.cpp): sites, buildings, units, rooms, households and access groups as
// rows of simple tables, household members, access group members and doors. Rows in, rows
// out; the rules live in archive/place_service.h. Every function runs on the caller's
// connection.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server {
class SiteScope;
}

namespace anju::server::storage {

// A column of a place table and how its values are stored.
struct PlaceColumn {
  enum class Type { kInteger, kText, kJson };  // kJson: JSON text (arrays)
  std::string name;
  Type type = Type::kText;
};

// One table: its name, the parent's foreign-key column ("" = none) and its columns (besides
// id and created_ms).
struct PlaceTable {
  std::string table;
  std::string parent;
  std::vector<PlaceColumn> columns;
};

struct HouseholdMemberRow {
  std::string person, name, role;
  int64_t since_ms = 0;
  std::string status;
};

class PlaceRepo {
 public:
  // ---- rows of a place table, as JSON objects {"id", columns…, "created_ms"} ----
  static std::optional<nlohmann::json> Get(db::Conn& c, const PlaceTable& t, int64_t id);
  // The rows under PARENT (0 = all) within SCOPE, by id, and how many there are.
  static std::pair<std::vector<nlohmann::json>, int64_t> List(db::Conn& c, const PlaceTable& t,
                                                              int64_t parent,
                                                              const SiteScope& scope, int64_t limit,
                                                              int64_t offset);
  // VALUES: one per column (null = NULL); returns the new id. Throws the database's error
  // when a foreign key names no row.
  static int64_t Insert(db::Conn& c, const PlaceTable& t, const nlohmann::json& values,
                        int64_t now_ms);
  static void Set(db::Conn& c, const PlaceTable& t, const PlaceColumn& col, int64_t id,
                  const nlohmann::json& value);
  // Throws the database's error while the row is still referenced.
  static void Delete(db::Conn& c, const PlaceTable& t, int64_t id);

  // ---- household members ----
  static bool HouseholdExists(db::Conn& c, int64_t id);
  // Adds the person or changes their role.
  static void PutHouseholdMember(db::Conn& c, int64_t household, int64_t person_id,
                                 const std::string& role, int64_t now_ms);
  // True when the person was a member.
  static bool RemoveHouseholdMember(db::Conn& c, int64_t household, int64_t person_id);
  static std::vector<HouseholdMemberRow> HouseholdMembers(db::Conn& c, int64_t household);

  // ---- access group members and doors ----
  static bool GroupExists(db::Conn& c, int64_t id);
  static std::vector<int64_t> GroupMembers(db::Conn& c, int64_t group);
  // True when it changed anything.
  static bool AddGroupMember(db::Conn& c, int64_t group, int64_t person_id);
  static bool RemoveGroupMember(db::Conn& c, int64_t group, int64_t person_id);
  static int64_t CountGroupMembers(db::Conn& c, int64_t group);
  // The identity codes of the members within SCOPE, by code, and how many there are.
  static std::pair<std::vector<std::string>, int64_t> GroupMemberCodes(db::Conn& c, int64_t group,
                                                                       const SiteScope& scope,
                                                                       int64_t limit,
                                                                       int64_t offset);
  static void ClearGroupDoors(db::Conn& c, int64_t group);
  static void AddGroupDoor(db::Conn& c, int64_t group, const std::string& device_id, int64_t door);
  // (device id, door) by device and door.
  static std::vector<std::pair<std::string, int64_t>> GroupDoors(db::Conn& c, int64_t group);
};

}  // namespace anju::server::storage
