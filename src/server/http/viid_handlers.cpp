// GA/T 1400 (视图库) intake for snapshot cameras: /VIID/System/Register, UnRegister,
// Keepalive, /VIID/Faces (Auth::kNone at the router: HTTP Digest is checked here), and the
// admin side of snapshot cameras: VIID devices, captures, strangers, alert rules, the webhook, the
// live event stream and the reports (docs/viid.md). The logic is in the parts of
// server/viid/viid_service.h.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>

#include "protocol/api_error.h"
#include "protocol/viid.h"
#include "server/access/account_support.h"
#include "server/access/principal.h"
#include "server/http/handlers.h"
#include "server/http/router.h"
#include "server/http/thumbnail.h"
#include "server/viid/viid_service.h"

namespace anju::server {

using nlohmann::json;
namespace viid = protocol::viid;

namespace {

int StatusOf(ViidAnswer::Outcome outcome) {
  using Outcome = ViidAnswer::Outcome;
  switch (outcome) {
    case Outcome::kOk:
      return 200;
    case Outcome::kMalformed:
      return 400;
    case Outcome::kUnauthenticated:
      return 401;
    case Outcome::kRefused:
      return 403;
    case Outcome::kTooLarge:
      return 413;
  }
  return 500;
}

Reply Answer(const ViidAnswer& a) {
  Reply r = Reply::Json(a.body, StatusOf(a.outcome));
  r.content_type = "application/json;charset=UTF-8";
  if (!a.challenge.empty()) r.headers.emplace_back("WWW-Authenticate", a.challenge);
  return r;
}

std::string Remote(const http::Request& h) {
  return h.remote_addr;
}

Reply Csv(const json& report, const std::string& name) {
  Reply r;
  r.body = ReportCsv(report);
  r.content_type = "text/csv; charset=utf-8";
  r.headers.emplace_back("Content-Disposition", "attachment; filename=\"" + name + ".csv\"");
  return r;
}

std::vector<QueryParam> ReportParams() {
  return {{"from_ms", JType::kInteger, "time ≥ (Unix ms)"},
          {"to_ms", JType::kInteger, "time < (Unix ms)"},
          {"utc_offset_minutes", JType::kInteger, "buckets in this time zone (default 480)"},
          {"format", JType::kString, "json (default) | csv"}};
}

}  // namespace

void RegisterViidHandlers(Router& router, std::shared_ptr<ViidService> svc, ViidHandlerDeps deps) {
  const auto ctx = std::make_shared<const ViidHandlerDeps>(std::move(deps));

  // ---- GA/T 1400 (digest-authenticated by the handler) ----
  auto gat = [&router, ctx, svc](const char* path, bool require_digest, auto&& body_handler) {
    router
        .Add("POST", path, "GA/T 1400", Auth::kNone,
             std::string("GA/T 1400 ") + path +
                 " (HTTP Digest MD5 qop=auth; answers ResponseStatusObject)",
             [ctx, svc, require_digest, body_handler](Request& r) {
               auto who = svc->endpoint().Authenticate(
                   r.http.method, r.http.target, r.http.Header("Authorization"),
                   r.http.Header("User-Identify"), Remote(r.http), require_digest);
               if (auto* refused = std::get_if<ViidAnswer>(&who)) return Answer(*refused);
               // The camera's own source-address list (server_state.h), when one is wired.
               if (ctx->camera_source_allowed &&
                   !ctx->camera_source_allowed(std::get<std::string>(who), r.http))
                 throw protocol::ApiError(
                     403, "forbidden",
                     "摄像机来源地址不符 / camera not allowed from " + Remote(r.http));
               return Answer(body_handler(svc->endpoint(), std::get<std::string>(who), r));
             })
        .Returns("application/json", "ResponseStatusObject / ResponseStatusListObject");
  };
  gat(viid::kPathRegister, true, [](Gat1400Endpoint& s, const std::string& d, Request& r) {
    return s.Register(d, r.http.body, Remote(r.http));
  });
  gat(viid::kPathUnRegister, false, [](Gat1400Endpoint& s, const std::string& d, Request& r) {
    return s.Unregister(d, r.http.body);
  });
  gat(viid::kPathKeepalive, false, [](Gat1400Endpoint& s, const std::string& d, Request& r) {
    return s.Keepalive(d, r.http.body, Remote(r.http));
  });
  gat(viid::kPathFaces, false, [](Gat1400Endpoint& s, const std::string& d, Request& r) {
    return s.Faces(d, r.http.body, Remote(r.http));
  });
  // anju extension: live preview frames (raw JPEG body), kept in memory only.
  gat(viid::kPathLiveFrame, false, [](Gat1400Endpoint& s, const std::string& d, Request& r) {
    return s.LiveFrame(d, r.http.body);
  });
  router.Add("GET", viid::kPathTime, "GA/T 1400", Auth::kNone,
             "GA/T 1400 server time (SystemTimeObject)", [](Request&) {
               const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count();
               return Reply::Json({{"SystemTimeObject",
                                    {{"VIIDServerID", "anju-server"},
                                     {"TimeMode", "1"},
                                     {"LocalTime", viid::FormatTime(now)},
                                     {"TimeZone", "Asia/Shanghai"}}}});
             });

  // Site scope (server/site_scope.h): a camera belongs to the site of its building; one
  // outside the caller's sites answers 404 like a missing one.
  auto camera_in_scope = [](const std::optional<std::vector<int64_t>>& buildings,
                            const ViidDevice& d) {
    return !buildings || (d.building_id && std::find(buildings->begin(), buildings->end(),
                                                     *d.building_id) != buildings->end());
  };
  auto require_camera = [ctx, svc, camera_in_scope](const Principal& p, const std::string& camera) {
    const auto buildings = ctx->scoped_buildings(p);
    if (!buildings) return;
    for (const auto& d : svc->cameras().List())
      if (d.id == camera && camera_in_scope(buildings, d)) return;
    NotFound("viid device " + camera);
  };
  auto require_capture = [svc, require_camera](const Principal& p, const std::string& id) {
    if (p.sites.empty()) return;
    require_camera(p, svc->captures().Get(id).capture.device_id);
  };

  // Report rows of devices and cameras outside the caller's sites are left out (the first
  // TOP rows that remain are kept).
  auto scope_report = [ctx, svc, camera_in_scope](const Principal& p, json rep,
                                                  size_t top = size_t(-1)) {
    const auto devices = ctx->scoped_devices(p);
    if (!devices) return rep;
    std::set<std::string> keep(devices->begin(), devices->end());
    const auto buildings = ctx->scoped_buildings(p);
    for (const auto& d : svc->cameras().List())
      if (camera_in_scope(buildings, d)) keep.insert(d.id);
    json items = json::array();
    for (auto& row : rep["items"])
      if (items.size() < top && keep.count(row.value("device_id", std::string())))
        items.push_back(std::move(row));
    rep["items"] = std::move(items);
    return rep;
  };

  // ---- VIID devices ----
  router
      .Add("POST", "/api/v1/viid/devices", "snapshot cameras", Auth::kAdmin,
           "Add a GA/T 1400 camera: its DeviceID is the digest username (password stored as "
           "sealed HA1)",
           [ctx, svc](Request& r) {
             ViidDevice d;
             d.id = r.body["id"].get<std::string>();
             d.name = r.body.value("name", d.id);
             d.place = r.body.value("place", "");
             if (r.body.contains("building_id") && !r.body["building_id"].is_null())
               d.building_id = r.body["building_id"].get<int64_t>();
             if (r.body.contains("unit_id") && !r.body["unit_id"].is_null())
               d.unit_id = r.body["unit_id"].get<int64_t>();
             d.linked_device = r.body.value("linked_device", "");
             d = svc->cameras().Add(d, r.body["password"].get<std::string>());
             {
               ctx->audit(r.actor, "viid_device_add", "viid/devices/" + d.id,
                          {{"name", d.name}, {"place", d.place}});
             }
             return Reply::Json(d.ToJson(), 201);
           })
      .Perm("devices.manage")
      .Body(Obj({Req("id", Str("GA/T 1400 DeviceID (digest username)").MaxLength(64)),
                 Req("password", Str("digest password (≥ 8 characters)").MaxLength(256)),
                 Opt("name", Str().MaxLength(200)), Opt("place", Str().MaxLength(200)),
                 Opt("building_id", Int().Nullable()), Opt("unit_id", Int().Nullable()),
                 Opt("linked_device", Str("access terminal at the same door").MaxLength(64))}));

  router
      .Add("GET", "/api/v1/viid/devices", "snapshot cameras", Auth::kAdmin,
           "GA/T 1400 cameras with registration state",
           [ctx, svc, camera_in_scope](Request& r) {
             const auto buildings = ctx->scoped_buildings(r.principal);
             json items = json::array();
             for (const auto& d : svc->cameras().List())
               if (camera_in_scope(buildings, d)) items.push_back(d.ToJson());
             return Reply::Json({{"items", items}, {"total", items.size()}});
           })
      .Perm("devices.read");

  router
      .Add("DELETE", "/api/v1/viid/devices/{id}", "snapshot cameras", Auth::kAdmin,
           "Revoke a GA/T 1400 camera (its captures stay)",
           [ctx, svc, require_camera](Request& r) {
             require_camera(r.principal, r.Path("id"));
             if (!svc->cameras().Revoke(r.Path("id"))) NotFound("viid device " + r.Path("id"));
             ctx->audit(r.actor, "viid_device_revoke", "viid/devices/" + r.Path("id"), json());
             return Reply::Json({{"revoked", r.Path("id")}});
           })
      .Perm("devices.manage");

  router
      .Add("GET", "/api/v1/viid/devices/{id}/preview", "snapshot cameras", Auth::kAdmin,
           "The camera's latest frame: the scene image of its latest capture, else the face "
           "(JPEG; audited). Poll it for a live preview",
           [ctx, svc, require_camera](Request& r) {
             const std::string& dev = r.Path("id");
             require_camera(r.principal, dev);
             CaptureQuery q;
             q.device = dev;
             q.limit = 1;
             const CapturePage page = svc->captures().List(q);
             if (page.items.empty()) NotFound("capture of camera " + dev);
             const std::string id = page.items[0].id;
             int n = 0;
             for (const auto& img : svc->captures().Get(id).image_list)
               if (img.type == viid::kImageTypeScene) n = int(img.n);
             const auto jpeg = svc->captures().Image(id, n);
             {
               ctx->audit(r.actor, "capture_view", "captures/" + id + "/" + std::to_string(n),
                          json());
             }
             Reply rep = Reply::Jpeg({jpeg.begin(), jpeg.end()});
             rep.headers.emplace_back("Cache-Control", "no-store");
             rep.headers.emplace_back("X-Capture-Id", id);
             return rep;
           })
      .Perm("photos.read")
      .Returns("image/jpeg", "the latest frame");

  // ---- live view (frames the camera sends for preview; memory only) ----
  // Both are audited by the after-request hook (view.photo, once per request: an MJPEG
  // stream is one record however many frames it carries).
  router
      .Add("GET", "/api/v1/viid/devices/{id}/live.jpg", "snapshot cameras", Auth::kAdmin,
           "The camera's latest live frame (JPEG, downscaled by the camera; kept in memory only, "
           "404 when none arrived in the last 30 s; audited)",
           [svc](Request& r) {
             const auto f = svc->live().Latest(r.Path("id"));
             if (!f) NotFound("live frame of camera " + r.Path("id"));
             Reply rep = Reply::Jpeg(*f->jpeg);
             rep.headers.emplace_back("Cache-Control", "no-store");
             rep.headers.emplace_back("X-Frame-Time", std::to_string(f->time_ms));
             return rep;
           })
      .Perm("photos.read")
      .Returns("image/jpeg", "the latest live frame");

  router
      .Add("GET", "/api/v1/viid/devices/{id}/live.mjpeg", "snapshot cameras", Auth::kAdmin,
           "The camera's live frames as MJPEG (multipart/x-mixed-replace; boundary anjuframe), "
           "each frame as it arrives, for at most max_s seconds (default and limit 600); 404 "
           "without a recent frame, 503 when too many streams are open. Audited once per "
           "request",
           [svc](Request& r) {
             const std::string dev = r.Path("id");
             const int64_t max_s = r.QueryInt("max_s", 600, 1, 600);
             const auto first = svc->live().Latest(dev);
             if (!first) NotFound("live frame of camera " + dev);
             if (!svc->live().EnterStream())
               throw protocol::ApiError(503, "unavailable",
                                        "实时画面连接过多 / too many live streams, poll live.jpg");
             svc->live().LeaveStream();  // counted again while the stream actually runs
             struct State {
               uint64_t seq = 0;
               bool entered = false;
               std::chrono::steady_clock::time_point until;
             };
             auto st = std::make_shared<State>();
             st->until = std::chrono::steady_clock::now() + std::chrono::seconds(max_s);
             Reply rep;
             rep.content_type = "multipart/x-mixed-replace; boundary=anjuframe";
             rep.headers.emplace_back("Cache-Control", "no-store");
             // Pulled by the HTTP front's I/O thread: never blocks (http::StreamPull).
             rep.stream = [svc, dev, st]() -> http::StreamStep {
               if (!st->entered) {
                 if (!svc->live().EnterStream()) return http::StreamStep::End();
                 st->entered = true;
               }
               if (std::chrono::steady_clock::now() >= st->until) return http::StreamStep::End();
               const auto f = svc->live().Pull(dev, st->seq);
               if (!f) {
                 // Nothing new yet: end when the camera stopped sending (or the server
                 // stops), keep waiting otherwise.
                 return svc->live().Pull(dev, 0) ? http::StreamStep::Wait()
                                                 : http::StreamStep::End();
               }
               st->seq = f->seq;
               std::string chunk = "--anjuframe\r\nContent-Type: image/jpeg\r\nContent-Length: " +
                                   std::to_string(f->jpeg->size()) + "\r\n\r\n";
               chunk.append(*f->jpeg);
               chunk += "\r\n";
               return http::StreamStep::Data(std::move(chunk));
             };
             rep.stream_end = [svc, st](bool) {
               if (st->entered) svc->live().LeaveStream();
             };
             return rep;
           })
      .Perm("photos.read")
      .Query({{"max_s", JType::kInteger, "end the stream after this many seconds (600)"}})
      .Returns("multipart/x-mixed-replace", "MJPEG stream");

  // ---- captures ----
  router
      .Add("GET", "/api/v1/captures", "snapshot cameras", Auth::kAdmin,
           "Captured faces with their recognition result, newest first",
           [ctx, svc](Request& r) {
             CaptureQuery q;
             q.buildings = ctx->scoped_buildings(r.principal);
             q.from_ms = r.QueryInt("from_ms", 0, 0, int64_t(1) << 53);
             q.to_ms = r.QueryInt("to_ms", 0, 0, int64_t(1) << 53);
             q.device = r.Query("device").value_or("");
             q.person = r.Query("person").value_or("");
             q.outcome = r.Query("outcome").value_or("");
             q.state = r.Query("state").value_or("");
             q.stranger = r.QueryInt("stranger", 0, 0, int64_t(1) << 53);
             const Paging p = ReadPaging(r);
             q.limit = p.limit;
             q.offset = p.offset;
             return Reply::Json(ToJson(svc->captures().List(q)));
           })
      .Perm("events.read")
      .Query(PagingParams(
          {{"from_ms", JType::kInteger, "capture time ≥"},
           {"to_ms", JType::kInteger, "capture time <"},
           {"device", JType::kString, "camera DeviceID"},
           {"person", JType::kString, "recognised identity code"},
           {"outcome", JType::kString, "accept | stranger | uncertain"},
           {"state", JType::kString, "queued | done | rejected | no_face | failed | unrecognised"},
           {"stranger", JType::kInteger, "stranger cluster id"}}));

  router
      .Add("GET", "/api/v1/captures/latest", "snapshot cameras", Auth::kAdmin,
           "The latest capture of every camera (live preview of recent captures)",
           [ctx, svc, camera_in_scope](Request& r) {
             std::optional<std::set<std::string>> cameras;
             if (const auto buildings = ctx->scoped_buildings(r.principal)) {
               cameras.emplace();
               for (const auto& d : svc->cameras().List())
                 if (camera_in_scope(buildings, d)) cameras->insert(d.id);
             }
             json items = json::array();
             for (const auto& c : svc->captures().Latest())
               if (!cameras || cameras->count(c.device_id)) items.push_back(ToJson(c));
             return Reply::Json({{"items", items}});
           })
      .Perm("events.read");

  router
      .Add("GET", "/api/v1/captures/{id}", "snapshot cameras", Auth::kAdmin,
           "One capture with its images",
           [svc, require_capture](Request& r) {
             require_capture(r.principal, r.Path("id"));
             return Reply::Json(ToJson(svc->captures().Get(r.Path("id"))));
           })
      .Perm("events.read");

  router
      .Add("GET", "/api/v1/captures/{id}/images/{n}", "snapshot cameras", Auth::kAdmin,
           "A capture's image (decrypted JPEG; audited)",
           [ctx, svc, require_capture](Request& r) {
             ThumbnailSize(r);  // a bad size: 400 before anything is read or audited
             require_capture(r.principal, r.Path("id"));
             const std::string& ns = r.Path("n");
             if (ns.empty() || ns.size() > 2 || ns.find_first_not_of("0123456789") != ns.npos)
               NotFound("image " + ns);
             const auto jpeg = svc->captures().Image(r.Path("id"), std::stoi(ns));
             { ctx->audit(r.actor, "capture_view", "captures/" + r.Path("id") + "/" + ns, json()); }
             return Reply::Jpeg(SizedImage(r, {jpeg.begin(), jpeg.end()}));
           })
      .Perm("photos.read")
      .Query({{"size", JType::kInteger, "a thumbnail: the longer side at most this (16-1024 px)"}})
      .Returns("image/jpeg", "the image");

  router
      .Add("GET", "/api/v1/captures/{id}/clip", "snapshot cameras", Auth::kAdmin,
           "A capture's clip: the frames around the best face (n, offset_ms from the best "
           "frame, size); 404 when the capture has none (audited)",
           [svc](Request& r) { return Reply::Json(ToJson(svc->captures().Clip(r.Path("id")))); })
      .Perm("photos.read");

  router
      .Add("GET", "/api/v1/captures/{id}/clip/{n}.jpg", "snapshot cameras", Auth::kAdmin,
           "One clip frame (decrypted JPEG; audited)",
           [svc](Request& r) {
             const std::string& ns = r.Path("n");
             if (ns.empty() || ns.size() > 3 || ns.find_first_not_of("0123456789") != ns.npos)
               NotFound("clip frame " + ns);
             const auto jpeg = svc->captures().ClipFrame(r.Path("id"), std::stoi(ns));
             return Reply::Jpeg({jpeg.begin(), jpeg.end()});
           })
      .Perm("photos.read")
      .Returns("image/jpeg", "the clip frame");

  // ---- strangers ----
  router
      .Add("GET", "/api/v1/strangers", "snapshot cameras", Auth::kAdmin,
           "Visitor identities (clusters of unknown faces) with counts per camera and time",
           [ctx, svc](Request& r) {
             const Paging p = ReadPaging(r);
             StrangerQuery q;
             q.from_ms = r.QueryInt("from_ms", 0, 0, int64_t(1) << 53);
             q.to_ms = r.QueryInt("to_ms", 0, 0, int64_t(1) << 53);
             q.device = r.Query("device").value_or("");
             q.min_count = r.QueryInt("min_count", 1, 1, 1000000);
             q.limit = p.limit;
             q.offset = p.offset;
             q.buildings = ctx->scoped_buildings(r.principal);
             return Reply::Json(ToJson(svc->strangers().List(q)));
           })
      .Perm("events.read")
      .Query(PagingParams({{"from_ms", JType::kInteger, "capture time ≥"},
                           {"to_ms", JType::kInteger, "capture time <"},
                           {"device", JType::kString, "only captures of this camera"},
                           {"min_count", JType::kInteger, "at least this many captures"}}));

  router
      .Add("GET", "/api/v1/strangers/{id}", "snapshot cameras", Auth::kAdmin,
           "One visitor identity with its latest 100 captures",
           [ctx, svc](Request& r) {
             const std::string& ids = r.Path("id");
             if (ids.empty() || ids.size() > 15 || ids.find_first_not_of("0123456789") != ids.npos)
               NotFound("stranger " + ids);
             const auto buildings = ctx->scoped_buildings(r.principal);
             json out = ToJson(svc->strangers().Get(std::stoll(ids), buildings));
             CaptureQuery q;
             q.stranger = std::stoll(ids);
             q.limit = 100;
             q.buildings = buildings;
             out["captures"] = ToJson(svc->captures().List(q))["items"];
             return Reply::Json(out);
           })
      .Perm("events.read");

  // ---- alert rules ----
  const Schema rule_params = Obj({}, "type-specific parameters (docs/viid.md)").Open();
  router
      .Add("GET", "/api/v1/alert-rules", "alerts", Auth::kAdmin, "Alert rules",
           [svc](Request&) {
             json items = json::array();
             for (const auto& r : svc->alerts().Rules()) items.push_back(r.ToJson());
             return Reply::Json({{"items", items}, {"total", items.size()}});
           })
      .Perm("config.manage");

  router
      .Add("POST", "/api/v1/alert-rules", "alerts", Auth::kAdmin,
           "Add an alert rule (repeated_stranger, stranger_at_night, tenant_absent, "
           "elderly_not_seen, shared_authorisation, blacklist)",
           [ctx, svc](Request& r) {
             AlertRule rule;
             rule.type = r.body["type"].get<std::string>();
             rule.name = r.body.value("name", "");
             rule.enabled = r.body.value("enabled", true);
             rule.params = r.body.value("params", json::object());
             rule = svc->alerts().AddRule(rule);
             ctx->audit(r.actor, "alert_rule_add", "alert-rules/" + std::to_string(rule.id),
                        rule.ToJson());
             return Reply::Json(rule.ToJson(), 201);
           })
      .Perm("config.manage")
      .Body(Obj({Req("type", Str().Enum({"repeated_stranger", "stranger_at_night", "tenant_absent",
                                         "elderly_not_seen", "shared_authorisation", "blacklist"})),
                 Opt("name", Str().MaxLength(200)), Opt("enabled", Bool()),
                 Opt("params", rule_params)}));

  router
      .Add("PATCH", "/api/v1/alert-rules/{id}", "alerts", Auth::kAdmin,
           "Change an alert rule's name, enabled flag or parameters",
           [ctx, svc](Request& r) {
             const std::string& ids = r.Path("id");
             if (ids.empty() || ids.size() > 15 || ids.find_first_not_of("0123456789") != ids.npos)
               NotFound("rule " + ids);
             const AlertRule rule = svc->alerts().UpdateRule(std::stoll(ids), r.body);
             ctx->audit(r.actor, "alert_rule_change", "alert-rules/" + ids, r.body);
             return Reply::Json(rule.ToJson());
           })
      .Perm("config.manage")
      .Body(Obj(
          {Opt("name", Str().MaxLength(200)), Opt("enabled", Bool()), Opt("params", rule_params)}));

  router
      .Add("DELETE", "/api/v1/alert-rules/{id}", "alerts", Auth::kAdmin, "Remove an alert rule",
           [ctx, svc](Request& r) {
             const std::string& ids = r.Path("id");
             if (ids.empty() || ids.size() > 15 ||
                 ids.find_first_not_of("0123456789") != ids.npos ||
                 !svc->alerts().RemoveRule(std::stoll(ids)))
               NotFound("rule " + ids);
             ctx->audit(r.actor, "alert_rule_remove", "alert-rules/" + ids, json());
             return Reply::Json({{"removed", std::stoll(ids)}});
           })
      .Perm("config.manage");

  router
      .Add("POST", "/api/v1/alert-rules/evaluate", "alerts", Auth::kAdmin,
           "Run the periodic rules (tenant_absent, elderly_not_seen) now, or as of a given "
           "time (what-if)",
           [svc](Request& r) {
             const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
             const int64_t as_of = r.QueryInt("as_of_ms", now, 0, int64_t(1) << 53);
             return Reply::Json({{"alarms_raised", svc->alerts().EvaluatePeriodic(as_of)}});
           })
      .Perm("config.manage")
      .Query({{"as_of_ms", JType::kInteger, "evaluate as if it were this time (default now)"}});

  router
      .Add("GET", "/api/v1/alerts/webhook", "alerts", Auth::kAdmin,
           "The alarm webhook (URL, pending deliveries)",
           [svc](Request&) { return Reply::Json(ToJson(svc->forwarders().Webhook())); })
      .Perm("config.manage");

  router
      .Add("PUT", "/api/v1/alerts/webhook", "alerts", Auth::kAdmin,
           "Set the alarm webhook: every alarm is POSTed as JSON, retried until 2xx (\"\" = off)",
           [ctx, svc](Request& r) {
             svc->forwarders().SetWebhook(r.body["url"].get<std::string>());
             ctx->audit(r.actor, "webhook_set", "alerts/webhook", r.body);
             return Reply::Json(ToJson(svc->forwarders().Webhook()));
           })
      .Perm("config.manage")
      .Body(Obj({Req("url", Str("http(s)://host:port/path, or \"\"").MaxLength(2000))}));

  router
      .Add("GET", "/api/v1/viid/forward", "snapshot cameras", Auth::kAdmin,
           "Forwarding to an upper platform (target without its password, outbox state)",
           [svc](Request&) { return Reply::Json(ToJson(svc->forwarders().Forward())); })
      .Perm("config.manage");

  router
      .Add("PUT", "/api/v1/viid/forward", "snapshot cameras", Auth::kAdmin,
           "Forward recognised captures (and, for http, alarms) to an upper platform: kind "
           "http (JSON POST) or gat1400 (registers at url + /VIID/System/Register, keeps alive "
           "every keepalive_s, FaceListObject to url + /VIID/Faces, HTTP Digest); "
           "\"\" = off. Durable outbox, retried in order",
           [ctx, svc](Request& r) {
             ForwardTarget t;
             t.kind = r.body.value("kind", "");
             t.url = r.body.value("url", "");
             t.username = r.body.value("username", "");
             t.captures = r.body.value("captures", true);
             t.alarms = r.body.value("alarms", true);
             t.keepalive_s = r.body.value("keepalive_s", 30);
             std::optional<std::string> password;
             if (r.body.contains("password")) password = r.body["password"].get<std::string>();
             svc->forwarders().SetForward(t, password);
             json detail = r.body;
             detail.erase("password");
             ctx->audit(r.actor, "forward_set", "viid/forward", detail);
             return Reply::Json(ToJson(svc->forwarders().Forward()));
           })
      .Perm("config.manage")
      .Body(
          Obj({Req("kind", Str().Enum({"", "http", "gat1400"})), Opt("url", Str().MaxLength(2000)),
               Opt("username", Str().MaxLength(64)), Opt("password", Str().MaxLength(256)),
               Opt("captures", Bool()), Opt("alarms", Bool()),
               Opt("keepalive_s",
                   Int().Range(ForwardTarget::kMinKeepaliveS, ForwardTarget::kMaxKeepaliveS))}));

  router
      .Add("POST", "/api/v1/viid/retention/run", "maintenance", Auth::kAdmin,
           "Delete captures, their images and idle stranger clusters older than the snapshot "
           "retention (also hourly)",
           [ctx, svc](Request& r) {
             int64_t cutoff = 0;
             const int64_t total = svc->captures().RetainExpired(&cutoff);
             ctx->audit(r.actor, "capture_retention", "captures", {{"deleted", total}});
             return Reply::Json({{"deleted", total}, {"before_ms", cutoff}});
           })
      .Perm("maintenance");

  router
      .Add("GET", "/api/v1/viid/stats", "snapshot cameras", Auth::kAdmin,
           "Recognition counters, queue length and upload → recognised latency",
           [svc](Request&) { return Reply::Json(ToJson(svc->Counters())); })
      .Perm("devices.read");

  // ---- live stream ----
  router
      .Add("GET", "/api/v1/events/stream", "events", Auth::kAdmin,
           "Live events as text/event-stream (event: access | alarm | capture). Each response "
           "carries what is new after Last-Event-ID (or ?after=) and ends; with nothing new it "
           "holds up to 15 s and sends \": ping\". Reconnect with the last id",
           [ctx, svc](Request& r) {
             uint64_t after = 0;
             const std::string last = r.http.Header("Last-Event-ID");
             if (!last.empty() && last.size() < 20 &&
                 last.find_first_not_of("0123456789") == std::string::npos)
               after = std::stoull(last);
             else if (r.Query("after"))
               after = uint64_t(r.QueryInt("after", 0, 0, int64_t(1) << 53));
             else
               after = svc->bus().last_seq();  // a fresh reader starts from now
             const int64_t wait = r.QueryInt("wait_s", 15, 0, 60);
             auto msgs = svc->bus().Read(after, std::chrono::seconds(wait));
             Reply rep;
             rep.content_type = "text/event-stream";
             rep.headers.emplace_back("Cache-Control", "no-cache");
             rep.body = "retry: 1000\n";
             // An account limited to sites gets its devices' access records and alarms;
             // captures have no device site (snapshot cameras) and are left out.
             const auto devices = ctx->scoped_devices(r.principal);
             for (const auto& m : msgs) {
               if (devices &&
                   (m.event == "capture" ||
                    std::find(devices->begin(), devices->end(),
                              m.data.value("device_id", std::string())) == devices->end()))
                 continue;
               rep.body += runtime::EventBus::Sse(m);
             }
             if (msgs.empty()) rep.body += "id: " + std::to_string(after) + "\n: ping\n\n";
             return rep;
           })
      .Perm("events.read")
      .Query({{"after", JType::kInteger, "last id seen (same as Last-Event-ID)"},
              {"wait_s", JType::kInteger, "hold at most this long when nothing is new (15)"}})
      .Returns("text/event-stream", "SSE messages");

  // ---- reports (R3.4.2.2) ----
  router
      .Add("GET", "/api/v1/reports/traffic", "reports", Auth::kAdmin,
           "Entries (doors opened), exits (exit button) and captures per building, device and "
           "hour or day",
           [svc, scope_report](Request& r) {
             const std::string bucket = r.Query("bucket").value_or("hour");
             if (bucket != "hour" && bucket != "day")
               throw protocol::ApiError(400, "bad_request", "bucket: hour | day");
             const json rep = scope_report(
                 r.principal,
                 svc->reports().Traffic(r.QueryInt("from_ms", 0, 0, int64_t(1) << 53),
                                        r.QueryInt("to_ms", 0, 0, int64_t(1) << 53), bucket,
                                        int(r.QueryInt("utc_offset_minutes", 480, -840, 840))));
             return r.Query("format").value_or("json") == "csv" ? Csv(rep, "traffic")
                                                                : Reply::Json(rep);
           })
      .Perm("reports.read")
      .Query([] {
        auto q = ReportParams();
        q.emplace_back("bucket", JType::kString, "hour (default) | day");
        return q;
      }());

  router
      .Add("GET", "/api/v1/reports/strangers", "reports", Auth::kAdmin,
           "Stranger captures, distinct and new visitor identities per day",
           [ctx, svc](Request& r) {
             const json rep =
                 svc->reports().Strangers(r.QueryInt("from_ms", 0, 0, int64_t(1) << 53),
                                          r.QueryInt("to_ms", 0, 0, int64_t(1) << 53),
                                          int(r.QueryInt("utc_offset_minutes", 480, -840, 840)),
                                          ctx->scoped_buildings(r.principal));
             return r.Query("format").value_or("json") == "csv" ? Csv(rep, "strangers")
                                                                : Reply::Json(rep);
           })
      .Perm("reports.read")
      .Query(ReportParams());

  router
      .Add("GET", "/api/v1/reports/alerts", "reports", Auth::kAdmin,
           "Top alarms by type and device",
           [svc, scope_report](Request& r) {
             // A scoped account's top rows come from every row, not from the global top.
             const int64_t top = r.QueryInt("top", 20, 1, 1000);
             const json rep = scope_report(
                 r.principal,
                 svc->reports().Alerts(r.QueryInt("from_ms", 0, 0, int64_t(1) << 53),
                                       r.QueryInt("to_ms", 0, 0, int64_t(1) << 53),
                                       r.principal.sites.empty() ? top : int64_t(1) << 40),
                 size_t(top));
             return r.Query("format").value_or("json") == "csv" ? Csv(rep, "alerts")
                                                                : Reply::Json(rep);
           })
      .Perm("reports.read")
      .Query([] {
        auto q = ReportParams();
        q.emplace_back("top", JType::kInteger, "rows (20)");
        return q;
      }());
}

}  // namespace anju::server
