#include "server/storage/site_scope.h"

#include <algorithm>

#include "core/error.h"
#include "server/storage/repo_sql.h"

namespace anju::server {

bool SiteScope::HasSite(int64_t site_id) const {
  return unscoped() || std::find(sites_.begin(), sites_.end(), site_id) != sites_.end();
}

namespace {

// "1,2,3": ids for an SQL IN list (integers only, so nothing to escape).
std::string IdList(const std::vector<int64_t>& ids) {
  std::string out;
  for (const int64_t id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out;
}

}  // namespace

std::string SiteScope::SiteList() const {
  return IdList(sites_);
}

std::string SiteScope::SiteCondition(const std::string& site_id) const {
  if (unscoped()) return "1 = 1";
  return site_id + " IN (" + SiteList() + ")";
}

std::string SiteScope::PersonCondition(const std::string& person_id) const {
  if (unscoped()) return "1 = 1";
  return person_id +
         " IN (SELECT hm.person_id FROM household_members hm "
         "JOIN households h ON h.id = hm.household_id JOIN rooms r ON r.id = h.room_id "
         "JOIN units u ON u.id = r.unit_id JOIN buildings b ON b.id = u.building_id "
         "WHERE b.site_id IN (" +
         SiteList() + "))";
}

std::string SiteScope::DeviceCondition(const std::string& device_id) const {
  if (unscoped()) return "1 = 1";
  return device_id + " IN (SELECT id FROM devices WHERE " + SiteCondition("site_id") + ")";
}

std::string SiteScope::GroupCondition(const std::string& group_id) const {
  if (unscoped()) return "1 = 1";
  return "(EXISTS(SELECT 1 FROM access_group_doors gd WHERE gd.group_id = " + group_id +
         ") AND NOT EXISTS(SELECT 1 FROM access_group_doors gd LEFT JOIN devices gv ON gv.id = "
         "gd.device_id WHERE gd.group_id = " +
         group_id + " AND (gv.site_id IS NULL OR gv.site_id NOT IN (" + SiteList() + "))))";
}

std::string SiteScope::CameraCondition(const std::optional<std::vector<int64_t>>& buildings,
                                       const std::string& device_id) {
  if (!buildings) return "1 = 1";
  const std::string in = IdList(*buildings);
  if (in.empty()) return "1 = 0";
  return device_id + " IN (SELECT id FROM viid_devices WHERE building_id IN (" + in + "))";
}

std::string SiteScope::ArchiveSite(const std::string& table) {
  if (table == "sites") return "sites.id";
  if (table == "buildings") return "buildings.site_id";
  if (table == "units") return "(SELECT b.site_id FROM buildings b WHERE b.id = units.building_id)";
  if (table == "rooms")
    return "(SELECT b.site_id FROM units u JOIN buildings b ON b.id = u.building_id "
           "WHERE u.id = rooms.unit_id)";
  if (table == "households")
    return "(SELECT b.site_id FROM rooms r JOIN units u ON u.id = r.unit_id "
           "JOIN buildings b ON b.id = u.building_id WHERE r.id = households.room_id)";
  return "";
}

bool SiteScope::RowVisible(db::Conn& conn, const std::string& table, int64_t id) const {
  if (table == "access_groups") return GroupVisible(conn, id);
  const std::string site = ArchiveSite(table);
  if (unscoped() || site.empty()) return true;
  db::Stmt s(conn,
             "SELECT 1 FROM " + table + " WHERE " + table + ".id = ? AND " + SiteCondition(site));
  s.Bind(1, id);
  return s.Step();
}

bool SiteScope::PersonVisible(db::Conn& conn, int64_t person_id) const {
  if (unscoped()) return true;
  db::Stmt s(conn, "SELECT 1 WHERE " + PersonCondition("?1"));
  s.Bind(1, person_id);
  return s.Step();
}

bool SiteScope::PersonCodeVisible(db::Conn& conn, const std::string& code) const {
  if (unscoped()) return true;
  db::Stmt s(conn, "SELECT 1 FROM persons WHERE code = ? AND " + PersonCondition("id"));
  s.Bind(1, code);
  return s.Step();
}

bool SiteScope::DeviceVisible(db::Conn& conn, const std::string& device_id) const {
  if (unscoped()) return true;
  db::Stmt s(conn, "SELECT 1 FROM devices WHERE id = ? AND " + SiteCondition("site_id"));
  s.Bind(1, device_id);
  return s.Step();
}

bool SiteScope::HouseholdVisible(db::Conn& conn, int64_t household_id) const {
  return RowVisible(conn, "households", household_id);
}

bool SiteScope::GroupVisible(db::Conn& conn, int64_t group_id) const {
  if (unscoped()) return true;
  db::Stmt s(conn, "SELECT 1 WHERE " + GroupCondition("?1"));
  s.Bind(1, group_id);
  return s.Step();
}

std::optional<std::vector<std::string>> SiteScope::Devices(db::Conn& conn) const {
  if (unscoped()) return std::nullopt;
  std::vector<std::string> out;
  db::Stmt s(conn, "SELECT id FROM devices WHERE " + SiteCondition("site_id"));
  while (s.Step()) out.push_back(s.Text(0));
  return out;
}

std::optional<std::vector<int64_t>> SiteScope::Buildings(db::Conn& conn) const {
  if (unscoped()) return std::nullopt;
  std::vector<int64_t> out;
  db::Stmt s(conn, "SELECT id FROM buildings WHERE " + SiteCondition("site_id"));
  while (s.Step()) out.push_back(s.Int(0));
  return out;
}

void SiteScope::RequirePerson(db::Conn& conn, const std::string& code) const {
  if (!PersonCodeVisible(conn, code))
    throw Error(ErrorCode::kNotFound, "不存在 / not found: person " + code);
}

void SiteScope::RequireDevice(db::Conn& conn, const std::string& device_id) const {
  if (!DeviceVisible(conn, device_id))
    throw Error(ErrorCode::kNotFound, "不存在 / not found: device " + device_id);
}

bool SiteScope::ImportVisible(db::Conn& conn, const std::string& import_id,
                              const std::string& actor) const {
  // A scoped account sees the imports it started (their rows are of its sites).
  if (unscoped()) return true;
  const auto id = storage::RowIdOf(import_id);
  if (!id) return false;
  db::Stmt s(conn, "SELECT 1 FROM imports WHERE id = ? AND actor = ?");
  s.Bind(1, *id).Bind(2, actor);
  return s.Step();
}

}  // namespace anju::server
