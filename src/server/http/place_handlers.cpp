// The HTTP shape of places and groups (archive/place_service.h): one CRUD per kind (sites,
// buildings, units, rooms, households, access groups), household members, access group
// members and doors.
#include <map>
#include <nlohmann/json.hpp>

#include "server/access/account_support.h"
#include "server/archive/place_service.h"
#include "server/http/handlers.h"
#include "server/http/router.h"

namespace anju::server {

using nlohmann::json;

namespace {

int64_t RowId(const Request& r) {
  const std::string& v = r.Path("id");
  if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
    NotFound("id " + v);
  return std::stoll(v);
}

Schema WindowSchema() {
  return Obj({Req("days", Arr(Int("1 = Monday … 7 = Sunday").Range(1, 7)).MaxLength(7)),
              Req("start", Str("HH:MM local time").Pattern("^([01][0-9]|2[0-3]):[0-5][0-9]$")),
              Req("end", Str("HH:MM, exclusive; 24:00 allowed"))},
             "weekly time window");
}

// The OpenAPI tag and the schema of every column of each kind.
struct KindSchema {
  std::string tag;
  std::map<std::string, Schema> columns;
};

const std::map<std::string, KindSchema>& Schemas() {
  static const std::map<std::string, KindSchema> schemas = {
      {"sites",
       {"places",
        {{"name", Str("community / project name").MaxLength(200)},
         {"address", Str().MaxLength(500)}}}},
      {"buildings", {"places", {{"site_id", Int("site")}, {"name", Str().MaxLength(200)}}}},
      {"units", {"places", {{"building_id", Int("building")}, {"name", Str().MaxLength(200)}}}},
      {"rooms", {"places", {{"unit_id", Int("unit")}, {"name", Str().MaxLength(200)}}}},
      {"households",
       {"households", {{"room_id", Int("room").Nullable()}, {"name", Str().MaxLength(200)}}}},
      {"access-groups",
       {"access",
        {{"name", Str().MaxLength(200)},
         {"windows", Arr(WindowSchema(), "empty = any time").MaxLength(32)},
         {"valid_from_ms", Int("Unix ms; null = unbounded").Nullable()},
         {"valid_until_ms", Int("Unix ms, exclusive; null = unbounded").Nullable()},
         {"open_ms", Int("door open time, 0 = device default").Range(0, 600000)}}}},
  };
  return schemas;
}

Reply Page(const json& page, const Paging& p) {
  return Reply::Json(PageJson(page["items"], page["total"].get<int64_t>(), p));
}

}  // namespace

void RegisterPlaceHandlers(Router& router, PlaceService& places) {
  for (const PlaceKind& kind : PlaceKinds()) {
    const std::string path = kind.path;
    const std::string& parent = kind.table.parent;
    const KindSchema& schema = Schemas().at(path);
    const bool is_group = path == "access-groups";
    std::vector<Prop> create_props, patch_props;
    for (const auto& c : kind.table.columns) {
      const Schema& s = schema.columns.at(c.name);
      create_props.push_back(kind.IsRequired(c.name) ? Req(c.name, s) : Opt(c.name, s));
      if (c.name != parent) patch_props.push_back(Opt(c.name, s));
    }
    const std::string base = "/api/v1/" + path;
    std::vector<QueryParam> filters;
    if (!parent.empty()) filters.emplace_back(parent, JType::kInteger, "only children of");

    router
        .Add("GET", base, schema.tag, Auth::kAdmin, "archive.read", "List " + path,
             [&places, path, parent](Request& r) {
               const Paging p = ReadPaging(r);
               const int64_t under =
                   parent.empty() ? 0 : r.QueryInt(parent, 0, 0, int64_t(1) << 53);
               return Page(places.List(path, under, ScopeOf(r.principal), p.limit, p.offset), p);
             })
        .Query(PagingParams(filters));

    router
        .Add("POST", base, schema.tag, Auth::kAdmin, "archive.write", "Create one of " + path,
             [&places, path](Request& r) {
               return Reply::Json(places.Create(path, r.body, r.actor, ScopeOf(r.principal)), 201);
             })
        .Body(Obj(create_props));

    router.Add("GET", base + "/{id}", schema.tag, Auth::kAdmin, "archive.read", "One of " + path,
               [&places, path](Request& r) {
                 return Reply::Json(places.Get(path, RowId(r), ScopeOf(r.principal)));
               });

    router
        .Add("PATCH", base + "/{id}", schema.tag, Auth::kAdmin, "archive.write",
             "Change fields of one of " + path +
                 (is_group ? " (members' devices get the new rules)" : ""),
             [&places, path](Request& r) {
               const int64_t id = RowId(r);
               return Reply::Json(places.Update(path, id, r.body, r.actor, ScopeOf(r.principal)));
             })
        .Body(Obj(patch_props));

    router.Add("DELETE", base + "/{id}", schema.tag, Auth::kAdmin, "archive.write",
               "Delete one of " + path + " (409 while still referenced)",
               [&places, path](Request& r) {
                 const int64_t id = RowId(r);
                 places.Delete(path, id, r.actor, ScopeOf(r.principal));
                 return Reply::Json({{"deleted", id}});
               });
  }

  // ---- household members
  router
      .Add("POST", "/api/v1/households/{id}/members", "households", Auth::kAdmin, "archive.write",
           "Add a person to a household with a role",
           [&places](Request& r) {
             const int64_t hh = RowId(r);
             places.AddMember(hh, r.body["person"].get<std::string>(),
                              r.body["role"].get<std::string>(), r.actor, ScopeOf(r.principal));
             return Reply::Json(
                 {{"household_id", hh}, {"person", r.body["person"]}, {"role", r.body["role"]}},
                 201);
           })
      .Body(Obj({Req("person", Str("identity code")),
                 Req("role", Str().Enum({"tenant", "family", "carer", "staff", "visitor"}))}));

  router.Add("GET", "/api/v1/households/{id}/members", "households", Auth::kAdmin, "archive.read",
             "Members of a household",
             [&places](Request& r) { return Reply::Json(places.Members(RowId(r))); });

  router.Add("DELETE", "/api/v1/households/{id}/members/{code}", "households", Auth::kAdmin,
             "archive.write", "Remove a person from a household", [&places](Request& r) {
               places.RemoveMember(RowId(r), r.Path("code"), r.actor);
               return Reply::Json({{"removed", r.Path("code")}});
             });

  // ---- access group members and doors
  router
      .Add("POST", "/api/v1/access-groups/{id}/members", "access", Auth::kAdmin, "archive.write",
           "Add and remove members (identity codes); their devices get the change",
           [&places](Request& r) {
             return Reply::Json(
                 places.ChangeGroupMembers(RowId(r), r.body, r.actor, ScopeOf(r.principal)));
           })
      .Body(Obj({Opt("add", Arr(Str("identity code")).MaxLength(10000)),
                 Opt("remove", Arr(Str("identity code")).MaxLength(10000))}));

  router
      .Add("GET", "/api/v1/access-groups/{id}/members", "access", Auth::kAdmin, "archive.read",
           "Members of an access group",
           [&places](Request& r) {
             const int64_t gid = RowId(r);
             const Paging p = ReadPaging(r);
             return Page(places.GroupMembers(gid, ScopeOf(r.principal), p.limit, p.offset), p);
           })
      .Query(PagingParams());

  router
      .Add("PUT", "/api/v1/access-groups/{id}/doors", "access", Auth::kAdmin, "archive.write",
           "Replace the doors (device, door index) of an access group",
           [&places](Request& r) {
             const int64_t gid = RowId(r);
             places.SetGroupDoors(gid, r.body["doors"], r.actor, ScopeOf(r.principal));
             return Reply::Json({{"group", gid}, {"doors", r.body["doors"]}});
           })
      .Body(Obj({Req("doors", Arr(Obj({Req("device_id", Str()),
                                       Opt("door", Int("door index, default 0").Range(0, 63))}))
                                  .MaxLength(1000))}));

  router.Add("GET", "/api/v1/access-groups/{id}/doors", "access", Auth::kAdmin, "archive.read",
             "Doors of an access group", [&places](Request& r) {
               return Reply::Json({{"doors", places.GroupDoors(RowId(r))}});
             });
}

}  // namespace anju::server
