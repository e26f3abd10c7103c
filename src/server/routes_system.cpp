// GET /healthz, GET /api/openapi.json (the audit log is http/audit_handlers.cpp).
#include <nlohmann/json.hpp>
#include <sstream>

#include "protocol/api_error.h"

#include "server/audit/audit_log.h"
#include "server/server_state.h"

namespace anju::server {

using nlohmann::json;

void Server::Impl::AddSystemRoutes() {
  router.Add("GET", "/healthz", "system", Auth::kNone,
             "Liveness of the server: {\"status\": \"ok\", ...}", [this](Request&) {
               int64_t persons = 0, devices = 0;
               {
                 auto conn = db->Acquire();
                 Stmt a(conn, "SELECT COUNT(*) FROM persons");
                 a.Step();
                 persons = a.Int(0);
                 Stmt b(conn, "SELECT COUNT(*) FROM devices WHERE status = 'active'");
                 b.Step();
                 devices = b.Int(0);
               }
               // A full data disk makes the server degraded (503): it still answers, but
               // refuses writes with 507 until space returns (storage_health.h).
               const StorageHealth::State disk = storage->Check();
               json storage_state = {{"state", disk.full ? "full" : "ok"},
                                     {"available_bytes", disk.available_bytes}};
               if (disk.full) {
                 storage_state["since_ms"] = disk.since_ms;
                 storage_state["error"] = disk.error;
                 storage_state["alarm_raised"] = disk.alarm_raised;
               }
               return Reply::Json({{"status", disk.full ? "degraded" : "ok"},
                                   {"time_ms", NowMs()},
                                   {"schema_version", db->schema_version()},
                                   {"model_version", gate->model_version()},
                                   {"persons", persons},
                                   {"devices", devices},
                                   {"events", true},
                                   {"storage", storage_state}},
                                  disk.full ? 503 : 200);
             });
  router.Add("GET", "/api/openapi.json", "system", Auth::kNone,
             "This OpenAPI 3 document (generated from the route table)",
             [this](Request&) { return Reply::Json(router.OpenApi("anju-server", "1")); });
}

}  // namespace anju::server
