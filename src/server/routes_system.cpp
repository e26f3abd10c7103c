// GET /healthz, GET /api/openapi.json, the audit log (read, verify, export).
#include <nlohmann/json.hpp>
#include <sstream>

#include "protocol/api_error.h"

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
                                   {"events", true}});
             });
  router.Add("GET", "/api/openapi.json", "system", Auth::kNone,
             "This OpenAPI 3 document (generated from the route table)",
             [this](Request&) { return Reply::Json(router.OpenApi("anju-server", "1")); });
  router
      .Add("GET", "/api/v1/audit", "system", Auth::kAdmin, "audit.read",
           "Audit log, newest first (append-only)",
           [this](Request& r) {
             const Paging p = ReadPaging(r);
             const std::string action = r.Query("action").value_or("");
             const std::string object = r.Query("object").value_or("");
             const std::string actor = r.Query("actor").value_or("");
             std::lock_guard lock(db->mutex());
             const std::string where =
                 " WHERE (?1 = '' OR action = ?1) AND (?2 = '' OR object = ?2) AND (?3 = '' OR "
                 "actor = ?3)";
             Stmt c(db->handle(), "SELECT COUNT(*) FROM audit" + where);
             c.Bind(1, action).Bind(2, object).Bind(3, actor).Step();
             Stmt s(db->handle(),
                    "SELECT id, time_ms, actor, source, action, object, result, detail FROM audit" +
                        where + " ORDER BY id DESC LIMIT ?4 OFFSET ?5");
             s.Bind(1, action).Bind(2, object).Bind(3, actor).Bind(4, p.limit).Bind(5, p.offset);
             json items = json::array();
             while (s.Step()) {
               json detail = json::object();
               try {
                 detail = json::parse(s.Text(7));
               } catch (const json::exception&) {
                 detail = s.Text(7);  // shown as stored; `anju audit verify` judges it
               }
               items.push_back({{"id", s.Int(0)},
                                {"time_ms", s.Int(1)},
                                {"actor", s.Text(2)},
                                {"source", s.Text(3)},
                                {"action", s.Text(4)},
                                {"object", s.Text(5)},
                                {"result", s.Text(6)},
                                {"detail", detail}});
             }
             return Reply::Json(PageJson(items, c.Int(0), p));
           })
      .Query(PagingParams({{"action", JType::kString, "only this action"},
                           {"object", JType::kString, "only this object"},
                           {"actor", JType::kString, "only this actor"}}));

  router.Add("POST", "/api/v1/audit/verify", "system", Auth::kAdmin, "audit.read",
             "Verify the SM3 hash chain, the HMAC-SM3 checkpoints and the head of the audit log",
             [this](Request& r) {
               std::lock_guard lock(db->mutex());
               const auto result = VerifyAudit(*db, keys.audit_key);
               Audit(*db, AuditEntry{r.actor, r.principal.source, "audit.verify", "audit",
                                     result.ok ? "ok" : "broken", result.ToJson()});
               return Reply::Json(result.ToJson());
             });

  router
      .Add("GET", "/api/v1/audit/export", "system", Auth::kAdmin, "audit.read",
           "The audit log as CSV or JSON lines (from_ms, to_ms, actor, action)",
           [this](Request& r) {
             AuditQuery q;
             if (auto v = r.QueryInt("from_ms", 0, 0, int64_t(1) << 53)) q.from_ms = v;
             if (auto v = r.QueryInt("to_ms", 0, 0, int64_t(1) << 53)) q.to_ms = v;
             q.actor = r.Query("actor").value_or("");
             q.action = r.Query("action").value_or("");
             const std::string format = r.Query("format").value_or("csv");
             if (format != "csv" && format != "json")
               throw protocol::ApiError(400, "bad_request", "format: csv | json");
             std::ostringstream out;
             std::lock_guard lock(db->mutex());
             const size_t n = ExportAudit(*db, q, format, out);
             Audit(*db, AuditEntry{r.actor,
                                   r.principal.source,
                                   "audit.export",
                                   "audit",
                                   "ok",
                                   {{"records", n}, {"format", format}}});
             Reply rep;
             rep.body = out.str();
             rep.content_type =
                 format == "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson";
             rep.headers.emplace_back("Content-Disposition",
                                      std::string("attachment; filename=\"audit.") +
                                          (format == "csv" ? "csv" : "jsonl") + "\"");
             return rep;
           })
      .Query({{"from_ms", JType::kInteger, "time ≥ (Unix ms)"},
              {"to_ms", JType::kInteger, "time < (Unix ms)"},
              {"actor", JType::kString, "only this actor"},
              {"action", JType::kString, "only this action"},
              {"format", JType::kString, "csv (default) or json (JSON lines)"}})
      .Returns("text/csv", "the audit records");
}

}  // namespace anju::server
