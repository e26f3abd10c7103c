// The admin API's hooks around every handler (http/router.h AuthHooks): who is calling
// (sessions and API tokens, access/account_service.h), the per-route site check before the
// handler (404 outside the caller's sites, R4.2.1.1) and, after it, the audit of refusals
// and of views of personal data with the risk warning's counting (R4.2.2.1).
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/clock.h"
#include "core/uuid.h"
#include "server/access/account_service.h"
#include "server/audit/audit_log.h"
#include "server/server_state.h"
#include "server/storage/site_scope.h"

namespace anju::server {

using nlohmann::json;

namespace {

std::optional<int64_t> NumericId(const std::string& v) {
  if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(v);
}

}  // namespace

std::optional<std::vector<std::string>> Server::Impl::ScopedDevices(const Principal& p) {
  const SiteScope scope(p);
  if (scope.unscoped()) return std::nullopt;
  auto conn = db->Acquire();
  return scope.Devices(conn);
}

std::optional<std::vector<int64_t>> Server::Impl::ScopedBuildings(const Principal& p) {
  const SiteScope scope(p);
  if (scope.unscoped()) return std::nullopt;
  auto conn = db->Acquire();
  return scope.Buildings(conn);
}

int64_t Server::Impl::ScopedPersonId(db::Conn& conn, const Principal& p, const std::string& code) {
  const int64_t id = PersonId(conn, code);
  if (!SiteScope(p).PersonVisible(conn, id)) NotFound("person " + code);
  return id;
}

void Server::Impl::CheckScope(const Route& route, const Request& req) {
  const SiteScope scope(req.principal);
  if (scope.unscoped()) return;
  const std::string& p = route.path;
  auto under = [&](const char* prefix) { return p.rfind(prefix, 0) == 0; };
  if (under("/api/v1/persons/{code}")) {
    auto conn = db->Acquire();
    scope.RequirePerson(conn, req.Path("code"));
  } else if (under("/api/v1/devices/{id}")) {
    auto conn = db->Acquire();
    scope.RequireDevice(conn, req.Path("id"));
  } else if (under("/api/v1/households/{id}")) {
    const auto id = NumericId(req.Path("id"));
    auto conn = db->Acquire();
    if (!id || !scope.HouseholdVisible(conn, *id)) NotFound("households " + req.Path("id"));
  } else if (under("/api/v1/access-groups/{id}")) {
    const auto id = NumericId(req.Path("id"));
    auto conn = db->Acquire();
    if (!id || !scope.GroupVisible(conn, *id)) NotFound("access group " + req.Path("id"));
  } else if (under("/api/v1/imports/{id}")) {
    auto conn = db->Acquire();
    if (!scope.ImportVisible(conn, req.Path("id"), req.actor)) NotFound("import " + req.Path("id"));
  } else if (under("/api/v1/events/{id}")) {
    std::string device;
    try {
      device = events->Get(req.Path("id")).device_id;
    } catch (const Error&) {
      return;  // the handler answers the missing event
    }
    auto conn = db->Acquire();
    if (!scope.DeviceVisible(conn, device)) NotFound("event " + req.Path("id"));
  } else if (under("/api/v1/alarms/{id}")) {
    const auto id = NumericId(req.Path("id"));
    if (!id) return;
    std::string device;
    try {
      device = events->GetAlarm(*id).device_id;
    } catch (const Error&) {
      return;
    }
    auto conn = db->Acquire();
    if (!scope.DeviceVisible(conn, device)) NotFound("alarm " + req.Path("id"));
  }
}

Principal Server::Impl::Authenticate(const http::Request& req) {
  const std::string header = req.Header("Authorization");
  constexpr std::string_view kBearer = "Bearer ";
  std::string token;
  if (header.size() > kBearer.size() && header.compare(0, kBearer.size(), kBearer) == 0)
    token = header.substr(kBearer.size());
  return accounts->Authenticate(token, req.remote_addr);
}

void Server::Impl::AfterRequest(const Route& route, const Request& req, int status) {
  const Principal& p = req.principal;
  if (status == 403) {
    auto conn = db->Acquire();
    Audit(conn, AuditEntry{p.name,
                           p.source,
                           "access.denied",
                           route.method + " " + req.http.path,
                           "denied",
                           {{"permission", route.permission}}});
    return;
  }
  // A view of one person's archive or of a face image is audited and counted (R4.2.2.1);
  // changes are audited by their handlers with their details.
  const bool one_person =
      route.permission == "archive.read" && route.path.find("{code}") != std::string::npos;
  const bool image = route.permission == "photos.read";
  if (status == 200 && !req.persons_listed.empty()) {
    {
      auto conn = db->Acquire();
      Audit(conn, AuditEntry{p.name,
                             p.source,
                             "view.person_list",
                             req.http.path,
                             "ok",
                             {{"records", req.persons_listed.size()}}});
    }
    if (accounts->CountDistinct(p, "person", req.persons_listed)) RaiseRiskAlarm(p);
    return;
  }
  if (route.method != "GET" || status != 200 || !(one_person || image)) return;
  {
    auto conn = db->Acquire();
    Audit(conn, AuditEntry{p.name, p.source, image ? "view.photo" : "view.person", req.http.path,
                           "ok", json::object()});
  }
  // Polling a camera's live frame (the console's fallback when MJPEG is not available) is
  // one live view, not hundreds of photo reads: audited, not counted towards the risk alarm.
  if (route.path.ends_with("/live.jpg")) return;
  // A list's thumbnail (?size=, at most 256 px) counts once an hour per image, like a
  // listed person: a page shown again is not a new read, a new face is.
  const auto size = req.Query("size");
  if (image && size && !size->empty() && size->size() <= 3 && std::stoi(*size) <= 256) {
    if (accounts->CountDistinct(p, "thumb", {req.http.path})) RaiseRiskAlarm(p);
    return;
  }
  if (accounts->CountViews(p, 1)) RaiseRiskAlarm(p);
}

void Server::Impl::RaiseRiskAlarm(const Principal& p) {
  spdlog::warn("risk warning: {} blocked after unusual volume of archive / photo reads", p.name);
  const int64_t now = NowMs();
  // The server's own alarm goes in like a device's, so it is stored, listed and streamed
  // with the others (R4.2.2.1).
  const std::string uuid = NewUuid();
  const auto result = events->Ingest(
      "server",
      {{"events",
        json::array({{{"id", uuid},
                      {"kind", "alarm"},
                      {"created_ms", now},
                      {"payload",
                       {{"alarm_type", "data_leak_risk"},
                        {"severity", "critical"},
                        {"description", "账号 " + p.name +
                                            " 查看或导出数据异常，已冻结待复核 / "
                                            "unusual reads or exports by " +
                                            p.name + ": account blocked for review"}}}}})}});
  if (!result.rejected.empty())
    spdlog::error("risk alarm refused by the event store: {}", result.rejected[0].message);
}

}  // namespace anju::server
