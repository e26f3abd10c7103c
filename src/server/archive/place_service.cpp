#include "server/archive/place_service.h"

#include <algorithm>
#include <regex>

#include "core/clock.h"
#include "core/error.h"
#include "server/access/account_support.h"
#include "server/audit/audit_log.h"
#include "server/storage/device_repo.h"
#include "server/storage/site_scope.h"

namespace anju::server {

using nlohmann::json;
using storage::PlaceColumn;
using storage::PlaceRepo;

namespace {

constexpr auto kInt = PlaceColumn::Type::kInteger;
constexpr auto kText = PlaceColumn::Type::kText;
constexpr auto kJson = PlaceColumn::Type::kJson;

const PlaceKind& KindOf(const std::string& path) {
  for (const auto& k : PlaceKinds())
    if (k.path == path) return k;
  throw Error(ErrorCode::kInternal, "no place kind " + path);
}

bool IsGroup(const PlaceKind& k) {
  return k.table.table == "access_groups";
}

// "HH:MM" with 00:00 ≤ t ≤ 24:00.
bool IsClock(const std::string& t) {
  static const std::regex re(R"(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)");
  return std::regex_match(t, re);
}

// An access group's weekly windows (the schema checked their shape).
void CheckWindows(const json& fields) {
  if (!fields.contains("windows")) return;
  for (const auto& w : fields["windows"]) {
    if (!IsClock(w["start"].get<std::string>()) || w["start"] == "24:00" ||
        !IsClock(w["end"].get<std::string>()) || w["end"] == "00:00")
      throw Error(ErrorCode::kInvalidArgument,
                  "时间窗格式为 HH:MM / window times must be HH:MM (end may be 24:00)");
    if (w["days"].empty())
      throw Error(ErrorCode::kInvalidArgument, "时间窗需要星期 / window needs at least one day");
  }
}

json RowOf(db::Conn& conn, const PlaceKind& k, int64_t id) {
  auto row = PlaceRepo::Get(conn, k.table, id);
  if (!row) NotFound(k.path + " " + std::to_string(id));
  return *row;
}

}  // namespace

bool PlaceKind::IsRequired(const std::string& column) const {
  return std::find(required.begin(), required.end(), column) != required.end();
}

const std::vector<PlaceKind>& PlaceKinds() {
  static const std::vector<PlaceKind> kinds = {
      {"sites", {"sites", "", {{"name", kText}, {"address", kText}}}, {"name"}},
      {"buildings",
       {"buildings", "site_id", {{"site_id", kInt}, {"name", kText}}},
       {"site_id", "name"}},
      {"units",
       {"units", "building_id", {{"building_id", kInt}, {"name", kText}}},
       {"building_id", "name"}},
      {"rooms", {"rooms", "unit_id", {{"unit_id", kInt}, {"name", kText}}}, {"unit_id", "name"}},
      {"households", {"households", "room_id", {{"room_id", kInt}, {"name", kText}}}, {"name"}},
      {"access-groups",
       {"access_groups",
        "",
        {{"name", kText},
         {"windows", kJson},
         {"valid_from_ms", kInt},
         {"valid_until_ms", kInt},
         {"open_ms", kInt}}},
       {"name"}},
  };
  return kinds;
}

json PlaceService::List(const std::string& kind, int64_t parent, const Scope& scope, int64_t limit,
                        int64_t offset) {
  const PlaceKind& k = KindOf(kind);
  auto conn = db_.Acquire();
  auto [rows, total] = PlaceRepo::List(conn, k.table, parent, SiteScope(scope), limit, offset);
  return {{"items", rows}, {"total", total}};
}

json PlaceService::Get(const std::string& kind, int64_t id, const Scope& scope) {
  const PlaceKind& k = KindOf(kind);
  auto conn = db_.Acquire();
  if (!SiteScope(scope).RowVisible(conn, k.table.table, id))
    NotFound(k.path + " " + std::to_string(id));
  return RowOf(conn, k, id);
}

json PlaceService::Create(const std::string& kind, const json& fields, const std::string& actor,
                          const Scope& scope) {
  const PlaceKind& k = KindOf(kind);
  const bool group = IsGroup(k);
  if (group) CheckWindows(fields);
  const SiteScope sites(scope);
  if (k.table.table == "sites" && !sites.unscoped())
    throw Error(ErrorCode::kPermissionDenied,
                "限定站点的账号不能新建站点 / account limited to sites");
  // A new group has no doors yet, hence no site (SiteScope::GroupCondition).
  if (group && !sites.unscoped())
    throw Error(ErrorCode::kPermissionDenied,
                "限定站点的账号不能新建门禁组 / account limited to sites cannot create an "
                "access group");
  json values = json::object();
  for (const auto& c : k.table.columns) {
    json v = fields.value(c.name, json());
    if (v.is_null() && c.type == kJson) v = json::array();
    if (v.is_null() && c.name == "address") v = "";
    if (v.is_null() && c.name == "open_ms") v = 0;
    values[c.name] = v;
  }
  auto conn = db_.Acquire();
  db::Transaction tx(conn);
  int64_t id = 0;
  try {
    id = PlaceRepo::Insert(conn, k.table, values, NowMs());
  } catch (const Error& e) {
    throw Error(ErrorCode::kConflict,
                "引用的上级不存在 / parent does not exist: " + std::string(e.what()));
  }
  // The parent must be in the caller's sites (as if it did not exist otherwise).
  if (!sites.RowVisible(conn, k.table.table, id))
    NotFound(k.table.parent + " " + fields.value(k.table.parent, json()).dump());
  json row = RowOf(conn, k, id);
  Audit(conn, actor, "create", k.path + "/" + std::to_string(id), row);
  tx.Commit();
  return row;
}

json PlaceService::Update(const std::string& kind, int64_t id, const json& fields,
                          const std::string& actor, const Scope& scope) {
  const PlaceKind& k = KindOf(kind);
  const bool group = IsGroup(k);
  if (group) CheckWindows(fields);
  const SiteScope sites(scope);
  auto conn = db_.Acquire();
  db::Transaction tx(conn);
  RowOf(conn, k, id);
  if (!sites.RowVisible(conn, k.table.table, id)) NotFound(k.path + " " + std::to_string(id));
  for (const auto& c : k.table.columns) {
    if (!fields.contains(c.name)) continue;
    const json& v = fields[c.name];
    if (v.is_null() && (k.IsRequired(c.name) || c.type == kJson || c.name == "open_ms"))
      throw Error(ErrorCode::kInvalidArgument, c.name + " cannot be null");
    PlaceRepo::Set(conn, k.table, c, id, v);
  }
  // Moving a row out of the caller's sites is refused (rolled back).
  if (!sites.RowVisible(conn, k.table.table, id))
    NotFound(k.table.parent + " " + fields.value(k.table.parent, json()).dump());
  json row = RowOf(conn, k, id);
  if (group) gallery_.GroupChanged(conn, id, "rules_changed");
  Audit(conn, actor, "update", k.path + "/" + std::to_string(id), fields);
  tx.Commit();
  return row;
}

void PlaceService::Delete(const std::string& kind, int64_t id, const std::string& actor,
                          const Scope& scope) {
  const PlaceKind& k = KindOf(kind);
  auto conn = db_.Acquire();
  db::Transaction tx(conn);
  RowOf(conn, k, id);
  if (!SiteScope(scope).RowVisible(conn, k.table.table, id))
    NotFound(k.path + " " + std::to_string(id));
  std::vector<int64_t> members;
  if (IsGroup(k)) members = PlaceRepo::GroupMembers(conn, id);
  try {
    PlaceRepo::Delete(conn, k.table, id);
  } catch (const Error& e) {
    throw Error(ErrorCode::kConflict,
                "仍被引用，无法删除 / still referenced: " + std::string(e.what()));
  }
  // The group's members lose its doors.
  for (int64_t p : members) gallery_.PersonChanged(conn, p, "access_changed");
  Audit(conn, actor, "delete", k.path + "/" + std::to_string(id));
  tx.Commit();
}

void PlaceService::AddMember(int64_t household, const std::string& person, const std::string& role,
                             const std::string& actor, const Scope& scope) {
  {
    auto conn = db_.Acquire();
    db::Transaction tx(conn);
    const int64_t pid = person_(conn, scope, person);
    if (!PlaceRepo::HouseholdExists(conn, household))
      NotFound("household " + std::to_string(household));
    PlaceRepo::PutHouseholdMember(conn, household, pid, role, NowMs());
    History(conn, pid, "household_joined", actor, {{"household", household}, {"role", role}});
    Audit(conn, actor, "household_member_add", "households/" + std::to_string(household),
          {{"person", person}, {"role", role}});
    tx.Commit();
  }
  if (gallery_changed_) gallery_changed_();  // the person may now count in a site
}

json PlaceService::Members(int64_t household) {
  auto conn = db_.Acquire();
  json items = json::array();
  for (const auto& m : PlaceRepo::HouseholdMembers(conn, household))
    items.push_back({{"person", m.person},
                     {"name", m.name},
                     {"role", m.role},
                     {"since_ms", m.since_ms},
                     {"status", m.status}});
  return {{"items", items}, {"total", items.size()}};
}

void PlaceService::RemoveMember(int64_t household, const std::string& person,
                                const std::string& actor) {
  {
    auto conn = db_.Acquire();
    db::Transaction tx(conn);
    const int64_t pid = person_(conn, Scope{}, person);
    if (!PlaceRepo::RemoveHouseholdMember(conn, household, pid)) NotFound("membership");
    History(conn, pid, "household_left", actor, {{"household", household}});
    Audit(conn, actor, "household_member_remove", "households/" + std::to_string(household),
          {{"person", person}});
    tx.Commit();
  }
  if (gallery_changed_) gallery_changed_();
}

json PlaceService::ChangeGroupMembers(int64_t group, const json& change, const std::string& actor,
                                      const Scope& scope) {
  auto conn = db_.Acquire();
  db::Transaction tx(conn);
  if (!PlaceRepo::GroupExists(conn, group)) NotFound("access group " + std::to_string(group));
  std::vector<int64_t> touched;
  for (const auto& code : change.value("add", json::array())) {
    const int64_t pid = person_(conn, scope, code.get<std::string>());
    if (PlaceRepo::AddGroupMember(conn, group, pid)) {
      touched.push_back(pid);
      History(conn, pid, "access_group_joined", actor, {{"group", group}});
    }
  }
  for (const auto& code : change.value("remove", json::array())) {
    const int64_t pid = person_(conn, scope, code.get<std::string>());
    if (PlaceRepo::RemoveGroupMember(conn, group, pid)) {
      touched.push_back(pid);
      History(conn, pid, "access_group_left", actor, {{"group", group}});
    }
  }
  for (int64_t pid : touched) gallery_.PersonChanged(conn, pid, "access_changed");
  Audit(conn, actor, "access_group_members", "access-groups/" + std::to_string(group), change);
  const int64_t members = PlaceRepo::CountGroupMembers(conn, group);
  tx.Commit();
  return {{"changed", touched.size()}, {"members", members}};
}

json PlaceService::GroupMembers(int64_t group, const Scope& scope, int64_t limit, int64_t offset) {
  auto conn = db_.Acquire();
  auto [codes, total] = PlaceRepo::GroupMemberCodes(conn, group, SiteScope(scope), limit, offset);
  return {{"items", codes}, {"total", total}};
}

void PlaceService::SetGroupDoors(int64_t group, const json& doors, const std::string& actor,
                                 const Scope& scope) {
  const SiteScope sites(scope);
  auto conn = db_.Acquire();
  db::Transaction tx(conn);
  if (!PlaceRepo::GroupExists(conn, group)) NotFound("access group " + std::to_string(group));
  PlaceRepo::ClearGroupDoors(conn, group);
  for (const auto& door : doors) {
    const std::string dev = door["device_id"].get<std::string>();
    sites.RequireDevice(conn, dev);
    const auto count = storage::DeviceRepo::Doors(conn, dev);
    if (!count) NotFound("device " + dev);
    const int64_t n = door.value("door", int64_t{0});
    if (n >= *count)
      throw Error(ErrorCode::kInvalidArgument, "设备 " + dev + " 没有门 " + std::to_string(n) +
                                                   " / device " + dev + " has no door " +
                                                   std::to_string(n));
    PlaceRepo::AddGroupDoor(conn, group, dev, n);
  }
  // Without doors the group would leave the caller's scope (rolled back).
  if (!sites.GroupVisible(conn, group))
    throw Error(ErrorCode::kInvalidArgument,
                "限定站点的账号须保留至少一个门 / an account limited to sites must keep at "
                "least one door");
  gallery_.GroupChanged(conn, group, "doors_changed");
  Audit(conn, actor, "access_group_doors", "access-groups/" + std::to_string(group),
        {{"doors", doors}});
  tx.Commit();
}

json PlaceService::GroupDoors(int64_t group) {
  auto conn = db_.Acquire();
  json items = json::array();
  for (const auto& [device, door] : PlaceRepo::GroupDoors(conn, group))
    items.push_back({{"device_id", device}, {"door", door}});
  return items;
}

}  // namespace anju::server
