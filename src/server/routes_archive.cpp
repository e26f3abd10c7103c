// The places and groups of the archive: sites, buildings, units, rooms, households (with
// their members) and access groups (doors, time windows, validity, members). The simple
// resources share one table-driven CRUD so every one validates, pages and audits alike.
#include <nlohmann/json.hpp>

#include <regex>

#include "protocol/api_error.h"
#include "server/audit/audit_log.h"
#include "server/server_state.h"
#include "server/storage/site_scope.h"

namespace anju::server {

using nlohmann::json;

namespace {

struct Column {
  std::string name;
  Schema schema;
  bool required;
  bool json_text;  // stored as JSON text (arrays)
};

struct Resource {
  std::string path;   // "sites"
  std::string table;  // "sites"
  std::string tag;
  std::string parent;  // foreign-key column that is also a list filter ("" = none)
  std::vector<Column> columns;
};

int64_t RowId(const Request& r) {
  const std::string& v = r.Path("id");
  if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
    NotFound("id " + v);
  return std::stoll(v);
}

json ReadRow(Stmt& s, const Resource& res) {
  json row = {{"id", s.Int(0)}};
  for (size_t i = 0; i < res.columns.size(); ++i) {
    const auto& c = res.columns[i];
    const int col = int(i) + 1;
    if (s.IsNull(col))
      row[c.name] = nullptr;
    else if (c.json_text)
      row[c.name] = json::parse(s.Text(col));
    else if (c.schema.type == JType::kInteger)
      row[c.name] = s.Int(col);
    else
      row[c.name] = s.Text(col);
  }
  row["created_ms"] = s.Int(int(res.columns.size()) + 1);
  return row;
}

void BindValue(Stmt& s, int i, const Column& c, const json& v) {
  if (v.is_null())
    s.BindNull(i);
  else if (c.json_text)
    s.Bind(i, v.dump());
  else if (v.is_number_integer())
    s.Bind(i, v.get<int64_t>());
  else
    s.Bind(i, v.get<std::string>());
}

std::string SelectList(const Resource& res) {
  std::string cols = "id";
  for (const auto& c : res.columns) cols += ", " + c.name;
  return cols + ", created_ms";
}

json GetRow(Conn& conn, const Resource& res, int64_t id) {
  Stmt s(conn, "SELECT " + SelectList(res) + " FROM " + res.table + " WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) NotFound(res.path + " " + std::to_string(id));
  return ReadRow(s, res);
}

// "HH:MM" with 00:00 ≤ t ≤ 24:00.
bool IsClock(const std::string& t) {
  static const std::regex re(R"(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)");
  return std::regex_match(t, re);
}

Schema WindowSchema() {
  return Obj({Req("days", Arr(Int("1 = Monday … 7 = Sunday").Range(1, 7)).MaxLength(7)),
              Req("start", Str("HH:MM local time").Pattern("^([01][0-9]|2[0-3]):[0-5][0-9]$")),
              Req("end", Str("HH:MM, exclusive; 24:00 allowed"))},
             "weekly time window");
}

void CheckWindows(const json& body) {
  if (!body.contains("windows")) return;
  for (const auto& w : body["windows"]) {
    if (!IsClock(w["start"].get<std::string>()) || w["start"] == "24:00" ||
        !IsClock(w["end"].get<std::string>()) || w["end"] == "00:00")
      throw protocol::ApiError(
          400, "bad_request", "时间窗格式为 HH:MM / window times must be HH:MM (end may be 24:00)");
    if (w["days"].empty())
      throw protocol::ApiError(400, "bad_request",
                               "时间窗需要星期 / window needs at least one day");
  }
}

}  // namespace

void Server::Impl::AddArchiveRoutes() {
  const std::vector<Resource> resources = {
      {"sites",
       "sites",
       "places",
       "",
       {{"name", Str("community / project name").MaxLength(200), true, false},
        {"address", Str().MaxLength(500), false, false}}},
      {"buildings",
       "buildings",
       "places",
       "site_id",
       {{"site_id", Int("site"), true, false}, {"name", Str().MaxLength(200), true, false}}},
      {"units",
       "units",
       "places",
       "building_id",
       {{"building_id", Int("building"), true, false},
        {"name", Str().MaxLength(200), true, false}}},
      {"rooms",
       "rooms",
       "places",
       "unit_id",
       {{"unit_id", Int("unit"), true, false}, {"name", Str().MaxLength(200), true, false}}},
      {"households",
       "households",
       "households",
       "room_id",
       {{"room_id", Int("room").Nullable(), false, false},
        {"name", Str().MaxLength(200), true, false}}},
      {"access-groups",
       "access_groups",
       "access",
       "",
       {{"name", Str().MaxLength(200), true, false},
        {"windows", Arr(WindowSchema(), "empty = any time").MaxLength(32), false, true},
        {"valid_from_ms", Int("Unix ms; null = unbounded").Nullable(), false, false},
        {"valid_until_ms", Int("Unix ms, exclusive; null = unbounded").Nullable(), false, false},
        {"open_ms", Int("door open time, 0 = device default").Range(0, 600000), false, false}}},
  };
  for (const Resource& res : resources) {
    const bool is_group = res.table == "access_groups";
    std::vector<Prop> create_props, patch_props;
    for (const auto& c : res.columns) {
      create_props.push_back(c.required ? Req(c.name, c.schema) : Opt(c.name, c.schema));
      if (c.name != res.parent) patch_props.push_back(Opt(c.name, c.schema));
    }
    const std::string base = "/api/v1/" + res.path;
    std::vector<QueryParam> filters;
    if (!res.parent.empty()) filters.emplace_back(res.parent, JType::kInteger, "only children of");

    router
        .Add(
            "GET", base, res.tag, Auth::kAdmin, "archive.read", "List " + res.path,
            [this, res](Request& r) {
              const Paging p = ReadPaging(r);
              const int64_t parent =
                  res.parent.empty() ? 0 : r.QueryInt(res.parent, 0, 0, int64_t(1) << 53);
              const SiteScope scope(r.principal);
              const std::string site = SiteScope::ArchiveSite(res.table);
              const std::string where =
                  (res.parent.empty() ? " WHERE 1" : " WHERE (?1 = 0 OR " + res.parent + " = ?1)") +
                  (site.empty() ? "" : " AND " + scope.SiteCondition(site)) +
                  (res.table == "access_groups" ? " AND " + scope.GroupCondition("access_groups.id")
                                                : "");
              auto conn = db->Acquire();
              Stmt c(conn, "SELECT COUNT(*) FROM " + res.table + where);
              if (!res.parent.empty()) c.Bind(1, parent);
              c.Step();
              Stmt s(conn, "SELECT " + SelectList(res) + " FROM " + res.table + where +
                                       " ORDER BY id LIMIT ?2 OFFSET ?3");
              if (!res.parent.empty()) s.Bind(1, parent);
              s.Bind(2, p.limit).Bind(3, p.offset);
              json items = json::array();
              while (s.Step()) items.push_back(ReadRow(s, res));
              return Reply::Json(PageJson(items, c.Int(0), p));
            })
        .Query(PagingParams(filters));

    router
        .Add("POST", base, res.tag, Auth::kAdmin, "archive.write", "Create one of " + res.path,
             [this, res, is_group](Request& r) {
               if (is_group) CheckWindows(r.body);
               const SiteScope scope(r.principal);
               if (res.table == "sites" && !scope.unscoped())
                 throw protocol::ApiError(403, "forbidden",
                                          "限定站点的账号不能新建站点 / account limited to sites");
               // A new group has no doors yet, hence no site (SiteScope::GroupCondition).
               if (is_group && !scope.unscoped())
                 throw protocol::ApiError(
                     403, "forbidden",
                     "限定站点的账号不能新建门禁组 / account limited to sites cannot create an "
                     "access group");
               std::string cols, marks;
               for (const auto& c : res.columns) {
                 cols += c.name + ", ";
                 marks += "?, ";
               }
               auto conn = db->Acquire();
               Transaction tx(conn);
               Stmt s(conn, "INSERT INTO " + res.table + "(" + cols +
                                        "created_ms) VALUES(" + marks + "?)");
               int i = 1;
               for (const auto& c : res.columns) {
                 json v = r.body.value(c.name, json());
                 if (v.is_null() && c.json_text) v = json::array();
                 if (v.is_null() && c.name == "address") v = "";
                 if (v.is_null() && c.name == "open_ms") v = 0;
                 BindValue(s, i++, c, v);
               }
               s.Bind(i, NowMs());
               try {
                 s.Run();
               } catch (const Error& e) {
                 throw protocol::ApiError(
                     409, "conflict",
                     "引用的上级不存在 / parent does not exist: " + std::string(e.what()));
               }
               const int64_t id = conn.LastInsertId();
               // The parent must be in the caller's sites (as if it did not exist otherwise).
               if (!scope.RowVisible(conn, res.table, id))
                 NotFound(res.parent + " " + r.body.value(res.parent, json()).dump());
               json row = GetRow(conn, res, id);
               Audit(conn, r.actor, "create", res.path + "/" + std::to_string(id), row);
               tx.Commit();
               return Reply::Json(row, 201);
             })
        .Body(Obj(create_props));

    router.Add("GET", base + "/{id}", res.tag, Auth::kAdmin, "archive.read", "One of " + res.path,
               [this, res](Request& r) {
                 const int64_t id = RowId(r);
                 auto conn = db->Acquire();
                 if (!SiteScope(r.principal).RowVisible(conn, res.table, id))
                   NotFound(res.path + " " + std::to_string(id));
                 return Reply::Json(GetRow(conn, res, id));
               });

    router
        .Add("PATCH", base + "/{id}", res.tag, Auth::kAdmin, "archive.write",
             "Change fields of one of " + res.path +
                 (is_group ? " (members' devices get the new rules)" : ""),
             [this, res, is_group](Request& r) {
               if (is_group) CheckWindows(r.body);
               const int64_t id = RowId(r);
               const SiteScope scope(r.principal);
               auto conn = db->Acquire();
               Transaction tx(conn);
               GetRow(conn, res, id);
               if (!scope.RowVisible(conn, res.table, id))
                 NotFound(res.path + " " + std::to_string(id));
               for (const auto& c : res.columns) {
                 if (!r.body.contains(c.name)) continue;
                 json v = r.body[c.name];
                 if (v.is_null() && (c.required || c.json_text || c.name == "open_ms"))
                   throw protocol::ApiError(400, "bad_request", c.name + " cannot be null");
                 Stmt s(conn,
                        "UPDATE " + res.table + " SET " + c.name + " = ? WHERE id = ?");
                 BindValue(s, 1, c, v);
                 s.Bind(2, id).Run();
               }
               // Moving a row out of the caller's sites is refused (rolled back).
               if (!scope.RowVisible(conn, res.table, id))
                 NotFound(res.parent + " " + r.body.value(res.parent, json()).dump());
               json row = GetRow(conn, res, id);
               if (is_group) sync->GroupChanged(conn, id, "rules_changed");
               Audit(conn, r.actor, "update", res.path + "/" + std::to_string(id), r.body);
               tx.Commit();
               return Reply::Json(row);
             })
        .Body(Obj(patch_props));

    router.Add(
        "DELETE", base + "/{id}", res.tag, Auth::kAdmin, "archive.write",
        "Delete one of " + res.path + " (409 while still referenced)",
        [this, res, is_group](Request& r) {
          const int64_t id = RowId(r);
          auto conn = db->Acquire();
          Transaction tx(conn);
          GetRow(conn, res, id);
          if (!SiteScope(r.principal).RowVisible(conn, res.table, id))
            NotFound(res.path + " " + std::to_string(id));
          std::vector<int64_t> members;
          if (is_group) {
            Stmt m(conn, "SELECT person_id FROM access_group_members WHERE group_id = ?");
            m.Bind(1, id);
            while (m.Step()) members.push_back(m.Int(0));
          }
          Stmt s(conn, "DELETE FROM " + res.table + " WHERE id = ?");
          try {
            s.Bind(1, id).Run();
          } catch (const Error& e) {
            throw protocol::ApiError(
                409, "conflict", "仍被引用，无法删除 / still referenced: " + std::string(e.what()));
          }
          for (int64_t p : members) sync->PersonChanged(conn, p, "access_changed");
          Audit(conn, r.actor, "delete", res.path + "/" + std::to_string(id));
          tx.Commit();
          return Reply::Json({{"deleted", id}});
        });
  }

  // ---- household members
  router
      .Add("POST", "/api/v1/households/{id}/members", "households", Auth::kAdmin, "archive.write",
           "Add a person to a household with a role",
           [this](Request& r) {
             const int64_t hh = RowId(r);
             auto conn = db->Acquire();
             Transaction tx(conn);
             const int64_t pid = ScopedPersonId(conn, r.principal, r.body["person"].get<std::string>());
             Stmt e(conn, "SELECT 1 FROM households WHERE id = ?");
             e.Bind(1, hh);
             if (!e.Step()) NotFound("household " + std::to_string(hh));
             Stmt s(conn,
                    "INSERT INTO household_members(household_id, person_id, role, since_ms) "
                    "VALUES(?,?,?,?) ON CONFLICT(household_id, person_id) DO UPDATE SET role = "
                    "excluded.role");
             s.Bind(1, hh).Bind(2, pid).Bind(3, r.body["role"].get<std::string>()).Bind(4, NowMs());
             s.Run();
             History(conn, pid, "household_joined", r.actor,
                     {{"household", hh}, {"role", r.body["role"]}});
             Audit(conn, r.actor, "household_member_add", "households/" + std::to_string(hh),
                   r.body);
             tx.Commit();
             site_thresholds->GalleryChanged();  // the person may now count in a site
             return Reply::Json(
                 {{"household_id", hh}, {"person", r.body["person"]}, {"role", r.body["role"]}},
                 201);
           })
      .Body(Obj({Req("person", Str("identity code")),
                 Req("role", Str().Enum({"tenant", "family", "carer", "staff", "visitor"}))}));

  router.Add("GET", "/api/v1/households/{id}/members", "households", Auth::kAdmin, "archive.read",
             "Members of a household", [this](Request& r) {
               const int64_t hh = RowId(r);
               auto conn = db->Acquire();
               Stmt s(
                   conn,
                   "SELECT p.code, p.name, m.role, m.since_ms, p.status FROM household_members m "
                   "JOIN persons p ON p.id = m.person_id WHERE m.household_id = ? ORDER BY p.code");
               s.Bind(1, hh);
               json items = json::array();
               while (s.Step())
                 items.push_back({{"person", s.Text(0)},
                                  {"name", s.Text(1)},
                                  {"role", s.Text(2)},
                                  {"since_ms", s.Int(3)},
                                  {"status", s.Text(4)}});
               return Reply::Json({{"items", items}, {"total", items.size()}});
             });

  router.Add("DELETE", "/api/v1/households/{id}/members/{code}", "households", Auth::kAdmin,
             "archive.write", "Remove a person from a household", [this](Request& r) {
               const int64_t hh = RowId(r);
               auto conn = db->Acquire();
               Transaction tx(conn);
               const int64_t pid = PersonId(conn, r.Path("code"));
               Stmt s(conn,
                      "DELETE FROM household_members WHERE household_id = ? AND person_id = ?");
               s.Bind(1, hh).Bind(2, pid).Run();
               if (conn.Changes() == 0) NotFound("membership");
               History(conn, pid, "household_left", r.actor, {{"household", hh}});
               Audit(conn, r.actor, "household_member_remove", "households/" + std::to_string(hh),
                     {{"person", r.Path("code")}});
               tx.Commit();
               site_thresholds->GalleryChanged();
               return Reply::Json({{"removed", r.Path("code")}});
             });

  // ---- access group members and doors
  router
      .Add("POST", "/api/v1/access-groups/{id}/members", "access", Auth::kAdmin, "archive.write",
           "Add and remove members (identity codes); their devices get the change",
           [this](Request& r) {
             const int64_t gid = RowId(r);
             auto conn = db->Acquire();
             Transaction tx(conn);
             Stmt e(conn, "SELECT 1 FROM access_groups WHERE id = ?");
             e.Bind(1, gid);
             if (!e.Step()) NotFound("access group " + std::to_string(gid));
             std::vector<int64_t> touched;
             for (const auto& code : r.body.value("add", json::array())) {
               const int64_t pid = ScopedPersonId(conn, r.principal, code.get<std::string>());
               Stmt s(
                   conn,
                   "INSERT OR IGNORE INTO access_group_members(group_id, person_id) VALUES(?,?)");
               s.Bind(1, gid).Bind(2, pid).Run();
               if (conn.Changes()) {
                 touched.push_back(pid);
                 History(conn, pid, "access_group_joined", r.actor, {{"group", gid}});
               }
             }
             for (const auto& code : r.body.value("remove", json::array())) {
               const int64_t pid = ScopedPersonId(conn, r.principal, code.get<std::string>());
               Stmt s(conn,
                      "DELETE FROM access_group_members WHERE group_id = ? AND person_id = ?");
               s.Bind(1, gid).Bind(2, pid).Run();
               if (conn.Changes()) {
                 touched.push_back(pid);
                 History(conn, pid, "access_group_left", r.actor, {{"group", gid}});
               }
             }
             for (int64_t pid : touched) sync->PersonChanged(conn, pid, "access_changed");
             Audit(conn, r.actor, "access_group_members", "access-groups/" + std::to_string(gid),
                   r.body);
             Stmt c(conn, "SELECT COUNT(*) FROM access_group_members WHERE group_id = ?");
             c.Bind(1, gid).Step();
             const int64_t members = c.Int(0);
             tx.Commit();
             return Reply::Json({{"changed", touched.size()}, {"members", members}});
           })
      .Body(Obj({Opt("add", Arr(Str("identity code")).MaxLength(10000)),
                 Opt("remove", Arr(Str("identity code")).MaxLength(10000))}));

  router
      .Add("GET", "/api/v1/access-groups/{id}/members", "access", Auth::kAdmin, "archive.read",
           "Members of an access group",
           [this](Request& r) {
             const int64_t gid = RowId(r);
             const Paging p = ReadPaging(r);
             auto conn = db->Acquire();
             const std::string in_scope = SiteScope(r.principal).PersonCondition("m.person_id");
             Stmt c(conn,
                    "SELECT COUNT(*) FROM access_group_members m WHERE m.group_id = ? AND " +
                        in_scope);
             c.Bind(1, gid).Step();
             Stmt s(conn,
                    "SELECT p.code FROM access_group_members m JOIN persons p ON p.id = "
                    "m.person_id WHERE m.group_id = ? AND " +
                        in_scope + " ORDER BY p.code LIMIT ? OFFSET ?");
             s.Bind(1, gid).Bind(2, p.limit).Bind(3, p.offset);
             json items = json::array();
             while (s.Step()) items.push_back(s.Text(0));
             return Reply::Json(PageJson(items, c.Int(0), p));
           })
      .Query(PagingParams());

  router
      .Add("PUT", "/api/v1/access-groups/{id}/doors", "access", Auth::kAdmin, "archive.write",
           "Replace the doors (device, door index) of an access group",
           [this](Request& r) {
             const int64_t gid = RowId(r);
             auto conn = db->Acquire();
             Transaction tx(conn);
             Stmt e(conn, "SELECT 1 FROM access_groups WHERE id = ?");
             e.Bind(1, gid);
             if (!e.Step()) NotFound("access group " + std::to_string(gid));
             Stmt d(conn, "DELETE FROM access_group_doors WHERE group_id = ?");
             d.Bind(1, gid).Run();
             const SiteScope scope(r.principal);
             for (const auto& door : r.body["doors"]) {
               const std::string dev = door["device_id"].get<std::string>();
               scope.RequireDevice(conn, dev);
               Stmt v(conn, "SELECT doors FROM devices WHERE id = ?");
               v.Bind(1, dev);
               if (!v.Step()) NotFound("device " + dev);
               const int64_t n = door.value("door", int64_t{0});
               if (n >= v.Int(0))
                 throw protocol::ApiError(400, "bad_request",
                                          "设备 " + dev + " 没有门 " + std::to_string(n) +
                                              " / device " + dev + " has no door " +
                                              std::to_string(n));
               Stmt s(conn,
                      "INSERT OR IGNORE INTO access_group_doors(group_id, device_id, door) "
                      "VALUES(?,?,?)");
               s.Bind(1, gid).Bind(2, dev).Bind(3, n).Run();
             }
             // Without doors the group would leave the caller's scope (rolled back).
             if (!scope.GroupVisible(conn, gid))
               throw protocol::ApiError(400, "bad_request",
                                        "限定站点的账号须保留至少一个门 / an account limited to "
                                        "sites must keep at least one door");
             sync->GroupChanged(conn, gid, "doors_changed");
             Audit(conn, r.actor, "access_group_doors", "access-groups/" + std::to_string(gid),
                   r.body);
             tx.Commit();
             return Reply::Json({{"group", gid}, {"doors", r.body["doors"]}});
           })
      .Body(Obj({Req("doors", Arr(Obj({Req("device_id", Str()),
                                       Opt("door", Int("door index, default 0").Range(0, 63))}))
                                  .MaxLength(1000))}));

  router.Add("GET", "/api/v1/access-groups/{id}/doors", "access", Auth::kAdmin, "archive.read",
             "Doors of an access group", [this](Request& r) {
               const int64_t gid = RowId(r);
               auto conn = db->Acquire();
               Stmt s(conn,
                      "SELECT device_id, door FROM access_group_doors WHERE group_id = ? ORDER BY "
                      "device_id, door");
               s.Bind(1, gid);
               json items = json::array();
               while (s.Step()) items.push_back({{"device_id", s.Text(0)}, {"door", s.Int(1)}});
               return Reply::Json({{"doors", items}});
             });
}

}  // namespace anju::server
