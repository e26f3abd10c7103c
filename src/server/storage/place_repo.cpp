#include "server/storage/place_repo.h"

#include "server/storage/repo_sql.h"
#include "server/storage/site_scope.h"

namespace anju::server::storage {

using db::Stmt;
using nlohmann::json;

namespace {

std::string SelectList(const PlaceTable& t) {
  std::string cols = "id";
  for (const auto& c : t.columns) cols += ", " + c.name;
  return cols + ", created_ms";
}

json ReadRow(const Stmt& s, const PlaceTable& t) {
  json row = {{"id", s.Int(0)}};
  for (size_t i = 0; i < t.columns.size(); ++i) {
    const auto& c = t.columns[i];
    const int col = int(i) + 1;
    if (s.IsNull(col))
      row[c.name] = nullptr;
    else if (c.type == PlaceColumn::Type::kJson)
      row[c.name] = json::parse(s.Text(col));
    else if (c.type == PlaceColumn::Type::kInteger)
      row[c.name] = s.Int(col);
    else
      row[c.name] = s.Text(col);
  }
  row["created_ms"] = s.Int(int(t.columns.size()) + 1);
  return row;
}

// By the value's own type, as the request's schema already checked it.
void BindValue(Stmt& s, int i, const PlaceColumn& c, const json& v) {
  if (v.is_null())
    s.BindNull(i);
  else if (c.type == PlaceColumn::Type::kJson)
    s.Bind(i, v.dump());
  else if (v.is_number_integer())
    s.Bind(i, v.get<int64_t>());
  else
    s.Bind(i, v.get<std::string>());
}

}  // namespace

std::optional<json> PlaceRepo::Get(db::Conn& c, const PlaceTable& t, int64_t id) {
  Stmt s(c, "SELECT " + SelectList(t) + " FROM " + t.table + " WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return ReadRow(s, t);
}

std::pair<std::vector<json>, int64_t> PlaceRepo::List(db::Conn& c, const PlaceTable& t,
                                                      int64_t parent, const SiteScope& scope,
                                                      int64_t limit, int64_t offset) {
  const std::string site = SiteScope::ArchiveSite(t.table);
  const std::string where =
      (t.parent.empty() ? " WHERE 1 = 1" : " WHERE (?1 = 0 OR " + t.parent + " = ?1)") +
      (site.empty() ? "" : " AND " + scope.SiteCondition(site)) +
      (t.table == "access_groups" ? " AND " + scope.GroupCondition("access_groups.id") : "");
  Stmt n(c, "SELECT COUNT(*) FROM " + t.table + where);
  if (!t.parent.empty()) n.Bind(1, parent);
  n.Step();
  // Without a parent there is no ?1: PostgreSQL wants every parameter up to the last one
  // used in the statement.
  const int first = t.parent.empty() ? 1 : 2;
  Stmt s(c, "SELECT " + SelectList(t) + " FROM " + t.table + where + " ORDER BY id LIMIT ?" +
                std::to_string(first) + " OFFSET ?" + std::to_string(first + 1));
  if (!t.parent.empty()) s.Bind(1, parent);
  s.Bind(first, limit).Bind(first + 1, offset);
  std::vector<json> rows;
  while (s.Step()) rows.push_back(ReadRow(s, t));
  return {std::move(rows), n.Int(0)};
}

int64_t PlaceRepo::Insert(db::Conn& c, const PlaceTable& t, const json& values, int64_t now_ms) {
  std::string cols, marks;
  for (const auto& col : t.columns) {
    cols += col.name + ", ";
    marks += "?, ";
  }
  Stmt s(c,
         "INSERT INTO " + t.table + "(" + cols + "created_ms) VALUES(" + marks + "?) RETURNING id");
  int i = 1;
  for (const auto& col : t.columns) BindValue(s, i++, col, values.value(col.name, json()));
  s.Bind(i, now_ms);
  return InsertReturningId(s);
}

void PlaceRepo::Set(db::Conn& c, const PlaceTable& t, const PlaceColumn& col, int64_t id,
                    const json& value) {
  Stmt s(c, "UPDATE " + t.table + " SET " + col.name + " = ? WHERE id = ?");
  BindValue(s, 1, col, value);
  s.Bind(2, id).Run();
}

void PlaceRepo::Delete(db::Conn& c, const PlaceTable& t, int64_t id) {
  Stmt s(c, "DELETE FROM " + t.table + " WHERE id = ?");
  s.Bind(1, id).Run();
}

bool PlaceRepo::HouseholdExists(db::Conn& c, int64_t id) {
  Stmt e(c, "SELECT 1 FROM households WHERE id = ?");
  e.Bind(1, id);
  return e.Step();
}

void PlaceRepo::PutHouseholdMember(db::Conn& c, int64_t household, int64_t person_id,
                                   const std::string& role, int64_t now_ms) {
  Stmt s(c,
         "INSERT INTO household_members(household_id, person_id, role, since_ms) "
         "VALUES(?,?,?,?) ON CONFLICT(household_id, person_id) DO UPDATE SET role = "
         "excluded.role");
  s.Bind(1, household).Bind(2, person_id).Bind(3, role).Bind(4, now_ms).Run();
}

bool PlaceRepo::RemoveHouseholdMember(db::Conn& c, int64_t household, int64_t person_id) {
  Stmt s(c, "DELETE FROM household_members WHERE household_id = ? AND person_id = ?");
  s.Bind(1, household).Bind(2, person_id).Run();
  return c.Changes() > 0;
}

std::vector<HouseholdMemberRow> PlaceRepo::HouseholdMembers(db::Conn& c, int64_t household) {
  Stmt s(c,
         "SELECT p.code, p.name, m.role, m.since_ms, p.status FROM household_members m "
         "JOIN persons p ON p.id = m.person_id WHERE m.household_id = ? ORDER BY p.code");
  s.Bind(1, household);
  std::vector<HouseholdMemberRow> out;
  while (s.Step()) out.push_back({s.Text(0), s.Text(1), s.Text(2), s.Int(3), s.Text(4)});
  return out;
}

bool PlaceRepo::GroupExists(db::Conn& c, int64_t id) {
  Stmt e(c, "SELECT 1 FROM access_groups WHERE id = ?");
  e.Bind(1, id);
  return e.Step();
}

std::vector<int64_t> PlaceRepo::GroupMembers(db::Conn& c, int64_t group) {
  Stmt m(c, "SELECT person_id FROM access_group_members WHERE group_id = ?");
  m.Bind(1, group);
  std::vector<int64_t> out;
  while (m.Step()) out.push_back(m.Int(0));
  return out;
}

bool PlaceRepo::AddGroupMember(db::Conn& c, int64_t group, int64_t person_id) {
  Stmt s(c,
         "INSERT INTO access_group_members(group_id, person_id) VALUES(?,?) ON CONFLICT("
         "group_id, person_id) DO NOTHING");
  s.Bind(1, group).Bind(2, person_id).Run();
  return c.Changes() > 0;
}

bool PlaceRepo::RemoveGroupMember(db::Conn& c, int64_t group, int64_t person_id) {
  Stmt s(c, "DELETE FROM access_group_members WHERE group_id = ? AND person_id = ?");
  s.Bind(1, group).Bind(2, person_id).Run();
  return c.Changes() > 0;
}

int64_t PlaceRepo::CountGroupMembers(db::Conn& c, int64_t group) {
  Stmt n(c, "SELECT COUNT(*) FROM access_group_members WHERE group_id = ?");
  n.Bind(1, group).Step();
  return n.Int(0);
}

std::pair<std::vector<std::string>, int64_t> PlaceRepo::GroupMemberCodes(db::Conn& c, int64_t group,
                                                                         const SiteScope& scope,
                                                                         int64_t limit,
                                                                         int64_t offset) {
  const std::string in_scope = scope.PersonCondition("m.person_id");
  Stmt n(c, "SELECT COUNT(*) FROM access_group_members m WHERE m.group_id = ? AND " + in_scope);
  n.Bind(1, group).Step();
  Stmt s(c,
         "SELECT p.code FROM access_group_members m JOIN persons p ON p.id = "
         "m.person_id WHERE m.group_id = ? AND " +
             in_scope + " ORDER BY p.code LIMIT ? OFFSET ?");
  s.Bind(1, group).Bind(2, limit).Bind(3, offset);
  std::vector<std::string> codes;
  while (s.Step()) codes.push_back(s.Text(0));
  return {std::move(codes), n.Int(0)};
}

void PlaceRepo::ClearGroupDoors(db::Conn& c, int64_t group) {
  Stmt d(c, "DELETE FROM access_group_doors WHERE group_id = ?");
  d.Bind(1, group).Run();
}

void PlaceRepo::AddGroupDoor(db::Conn& c, int64_t group, const std::string& device_id,
                             int64_t door) {
  Stmt s(c,
         "INSERT INTO access_group_doors(group_id, device_id, door) VALUES(?,?,?) ON "
         "CONFLICT(group_id, device_id, door) DO NOTHING");
  s.Bind(1, group).Bind(2, device_id).Bind(3, door).Run();
}

std::vector<std::pair<std::string, int64_t>> PlaceRepo::GroupDoors(db::Conn& c, int64_t group) {
  Stmt s(c,
         "SELECT device_id, door FROM access_group_doors WHERE group_id = ? ORDER BY "
         "device_id, door");
  s.Bind(1, group);
  std::vector<std::pair<std::string, int64_t>> out;
  while (s.Step()) out.emplace_back(s.Text(0), s.Int(1));
  return out;
}

}  // namespace anju::server::storage
