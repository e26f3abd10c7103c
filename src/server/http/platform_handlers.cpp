// The three-level platform (docs/platform.md): the link from the level below, its nodes,
// commands down, the views across communities, the uplink's own state and the notices from
// above.
#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "server/http/handlers.h"
#include "server/http/router.h"
#include "server/platform/platform_hub.h"
#include "server/platform/uplink_sender.h"

namespace anju::server {

using nlohmann::json;

void RegisterPlatformHandlers(Router& router, PlatformHub* hub, UplinkSender& uplink,
                              db::Db& events) {
  router
      .Add("GET", "/api/v1/platform/uplink", "platform", Auth::kAdmin,
           "This node's link to the level above: backlog, last push, last error",
           [&uplink](Request&) { return Reply::Json(ToJson(uplink.Status())); })
      .Perm("reports.read");
  // Notices from above (R3.1.4.4): for the console, and signed for the terminals' screens.
  auto notices = [&events](Request&) {
    auto c = events.AcquireReader();
    json items = json::array();
    for (const auto& n : storage::PlatformRepo::Notices(c, NowMs()))
      items.push_back({{"id", n.id},
                       {"title", n.title},
                       {"text", n.text},
                       {"from_ms", n.from_ms},
                       {"until_ms", n.until_ms},
                       {"created_ms", n.created_ms}});
    return Reply::Json({{"items", items}});
  };
  router
      .Add("GET", "/api/v1/notices", "platform", Auth::kAdmin, "Current notices from above",
           notices)
      .Perm("events.read");
  router.Add("GET", "/api/v1/device/notices", "device protocol", Auth::kDevice,
             "Current notices for the terminal's screen", notices);
  if (!hub) return;

  router
      .Add("POST", "/api/v1/platform/uplink", "platform", Auth::kNone,
           "A sealed push from a node below (records up, commands down)",
           [hub](Request& r) { return Reply::Json(hub->Receive(r.body)); })
      .Body(Obj({Req("node", Str().MaxLength(64)), Req("sealed", Str())}));

  router
      .Add("POST", "/api/v1/platform/nodes", "platform", Auth::kAdmin,
           "Register a node below (community or district); answers its link secret once",
           [hub](Request& r) {
             return Reply::Json(
                 hub->AddNode(r.actor, r.body["id"].get<std::string>(), r.body.value("name", ""),
                              r.body.value("level", "community")),
                 201);
           })
      .Perm("config.manage")
      .Body(Obj({Req("id", Str().MaxLength(64)), Opt("name", Str().MaxLength(200)),
                 Opt("level", Str().Enum({"community", "district"}))}));
  router
      .Add("GET", "/api/v1/platform/nodes", "platform", Auth::kAdmin,
           "The nodes below with their last push and backlog",
           [hub](Request&) { return Reply::Json(hub->Nodes()); })
      .Perm("reports.read");
  router
      .Add("DELETE", "/api/v1/platform/nodes/{id}", "platform", Auth::kAdmin,
           "Disable a node below (its link secret stops working)",
           [hub](Request& r) {
             hub->DisableNode(r.actor, r.Path("id"));
             return Reply::Json({{"disabled", r.Path("id")}});
           })
      .Perm("config.manage");

  router
      .Add("POST", "/api/v1/platform/commands", "platform", Auth::kAdmin,
           "Send a policy or a notice down to a community, a district's communities or all (*)",
           [hub](Request& r) {
             return Reply::Json(hub->Issue(r.principal, r.body["target"].get<std::string>(),
                                           r.body["kind"].get<std::string>(), r.body["body"]),
                                201);
           })
      .Perm("config.manage")
      .Body(Obj({Req("target", Str().MaxLength(64)), Req("kind", Str().Enum({"policy", "notice"})),
                 Req("body", Any())}));
  router
      .Add("GET", "/api/v1/platform/commands", "platform", Auth::kAdmin,
           "Commands sent down and their confirmations",
           [hub](Request& r) {
             return Reply::Json(hub->Commands(r.principal, r.QueryInt("limit", 100, 1, 1000)));
           })
      .Perm("reports.read")
      .Query({{"limit", JType::kInteger, "1–1000"}});

  router
      .Add("GET", "/api/v1/platform/communities", "platform", Auth::kAdmin,
           "Communities with their health and backlog (within the account's scope)",
           [hub](Request& r) { return Reply::Json(hub->Communities(r.principal)); })
      .Perm("reports.read");
  router
      .Add("GET", "/api/v1/platform/stats", "platform", Auth::kAdmin,
           "Traffic, captures, strangers and alarms per community and day",
           [hub](Request& r) {
             const int64_t now = NowMs();
             const int64_t to = r.QueryInt("to_ms", now, 0, INT64_MAX / 2);
             const int64_t from = r.QueryInt("from_ms", to - 7 * 86400000LL, 0, INT64_MAX / 2);
             return Reply::Json(hub->Stats(r.principal, from, to,
                                           int(r.QueryInt("utc_offset_minutes", 480, -840, 840))));
           })
      .Perm("reports.read")
      .Query({{"from_ms", JType::kInteger, "from (default: 7 days before to_ms)"},
              {"to_ms", JType::kInteger, "to (default: now)"},
              {"utc_offset_minutes", JType::kInteger, "days in this time zone (480)"}});
  router
      .Add("GET", "/api/v1/platform/records", "platform", Auth::kAdmin,
           "Search records across communities (audited); warnings: kind=alarm",
           [hub](Request& r) {
             storage::RecordFilter f;
             f.community = r.Query("community").value_or("");
             f.kind = r.Query("kind").value_or("");
             f.person = r.Query("person").value_or("");
             f.alarm_type = r.Query("alarm_type").value_or("");
             f.from_ms = r.QueryInt("from_ms", 0, 0, INT64_MAX / 2);
             f.to_ms = r.QueryInt("to_ms", 0, 0, INT64_MAX / 2);
             f.limit = r.QueryInt("limit", 100, 1, 1000);
             f.offset = r.QueryInt("offset", 0, 0, 10000000);
             return Reply::Json(hub->Records(r.principal, f));
           })
      .Perm("events.read")
      .Query({{"community", JType::kString, "community id"},
              {"kind", JType::kString, "access | alarm | capture | health | confirm"},
              {"person", JType::kString, "identity code"},
              {"alarm_type", JType::kString, "tenant_absent, repeated_stranger, ..."},
              {"from_ms", JType::kInteger, "time ≥"},
              {"to_ms", JType::kInteger, "time <"},
              {"limit", JType::kInteger, "1–1000"},
              {"offset", JType::kInteger, "skip"}});

  router
      .Add("GET", "/api/v1/platform/scopes/{username}", "platform", Auth::kAdmin,
           "The communities / districts an account of this level is limited to",
           [hub](Request& r) {
             return Reply::Json(
                 {{"username", r.Path("username")}, {"nodes", hub->Scope(r.Path("username"))}});
           })
      .Perm("roles.manage");
  router
      .Add("PUT", "/api/v1/platform/scopes/{username}", "platform", Auth::kAdmin,
           "Limit an account to communities / districts ([] = all)",
           [hub](Request& r) {
             hub->PutScope(r.actor, r.Path("username"),
                           r.body["nodes"].get<std::vector<std::string>>());
             return Reply::Json(
                 {{"username", r.Path("username")}, {"nodes", hub->Scope(r.Path("username"))}});
           })
      .Perm("roles.manage")
      .Body(Obj({Req("nodes", Arr(Str().MaxLength(64)))}));
}

}  // namespace anju::server
