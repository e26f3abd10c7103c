// GET /healthz, GET /api/openapi.json, GET /api/v1/audit.
#include <nlohmann/json.hpp>

#include "server/audit.h"
#include "server/server_state.h"

namespace anju::server {

using nlohmann::json;

void Server::Impl::AddSystemRoutes() {
  router.Add("GET", "/healthz", "system", Auth::kNone,
             "Liveness of the server: {\"status\": \"ok\", ...}", [this](Request&) {
               int64_t persons = 0, devices = 0;
               {
                 std::lock_guard lock(db->mutex());
                 Stmt a(db->handle(), "SELECT COUNT(*) FROM persons");
                 a.Step();
                 persons = a.Int(0);
                 Stmt b(db->handle(), "SELECT COUNT(*) FROM devices WHERE status = 'active'");
                 b.Step();
                 devices = b.Int(0);
               }
               return Reply::Json({{"status", "ok"},
                                   {"time_ms", NowMs()},
                                   {"schema_version", db->schema_version()},
                                   {"model_version", gate->model_version()},
                                   {"persons", persons},
                                   {"devices", devices},
                                   {"events", bool(ANJU_SERVER_HAVE_EVENTS)}});
             });
  router.Add("GET", "/api/openapi.json", "system", Auth::kNone,
             "This OpenAPI 3 document (generated from the route table)",
             [this](Request&) { return Reply::Json(router.OpenApi("anju-server", "1")); });
  router
      .Add("GET", "/api/v1/audit", "system", Auth::kAdmin, "Audit log, newest first (append-only)",
           [this](Request& r) {
             const Paging p = ReadPaging(r);
             const std::string action = r.Query("action").value_or("");
             const std::string object = r.Query("object").value_or("");
             std::lock_guard lock(db->mutex());
             const std::string where =
                 " WHERE (?1 = '' OR action = ?1) AND (?2 = '' OR object = ?2)";
             Stmt c(db->handle(), "SELECT COUNT(*) FROM audit" + where);
             c.Bind(1, action).Bind(2, object).Step();
             Stmt s(db->handle(), "SELECT id, time_ms, actor, action, object, detail FROM audit" +
                                      where + " ORDER BY id DESC LIMIT ?3 OFFSET ?4");
             s.Bind(1, action).Bind(2, object).Bind(3, p.limit).Bind(4, p.offset);
             json items = json::array();
             while (s.Step())
               items.push_back({{"id", s.Int(0)},
                                {"time_ms", s.Int(1)},
                                {"actor", s.Text(2)},
                                {"action", s.Text(3)},
                                {"object", s.Text(4)},
                                {"detail", json::parse(s.Text(5))}});
             return Reply::Json(PageJson(items, c.Int(0), p));
           })
      .Query(PagingParams({{"action", JType::kString, "only this action"},
                           {"object", JType::kString, "only this object"}}));
}

}  // namespace anju::server
