// GET /healthz and GET /api/openapi.json (the audit log is http/audit_handlers.cpp).
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "server/health/storage_health.h"
#include "server/http/handlers.h"
#include "server/http/router.h"

namespace anju::server {

using nlohmann::json;

void RegisterSystemHandlers(Router& router, StorageHealth& storage,
                            std::function<nlohmann::json()> status) {
  router.Add("GET", "/healthz", "system", Auth::kNone,
             "Liveness of the server: {\"status\": \"ok\", ...}", [&storage, status](Request&) {
               json out = status();
               // A full data disk makes the server degraded (503): it still answers, but
               // refuses writes with 507 until space returns (storage_health.h).
               const StorageHealth::State disk = storage.Check();
               json storage_state = {{"state", disk.full ? "full" : "ok"},
                                     {"available_bytes", disk.available_bytes}};
               if (disk.full) {
                 storage_state["since_ms"] = disk.since_ms;
                 storage_state["error"] = disk.error;
                 storage_state["alarm_raised"] = disk.alarm_raised;
               }
               out["status"] = disk.full ? "degraded" : "ok";
               out["time_ms"] = NowMs();
               out["events"] = true;
               out["storage"] = storage_state;
               return Reply::Json(out, disk.full ? 503 : 200);
             });
  router.Add("GET", "/api/openapi.json", "system", Auth::kNone,
             "This OpenAPI 3 document (generated from the route table)",
             [&router](Request&) { return Reply::Json(router.OpenApi("anju-server", "1")); });
}

}  // namespace anju::server
