// The HTTP shape of devices (devices/device_service.h): administration (create, place at a
// site, enrolment codes, revoke, commands) and the device protocol (docs/device-protocol.md:
// register, gallery, commands, heartbeat).
#include <nlohmann/json.hpp>

#include "server/devices/device_service.h"
#include "server/http/handlers.h"
#include "server/http/router.h"

namespace anju::server {

using nlohmann::json;

std::string AuthenticateDevice(DeviceService& devices, const http::Request& req) {
  const protocol::SignedHeaders h{
      req.Header(protocol::kHeaderDevice), req.Header(protocol::kHeaderTime),
      req.Header(protocol::kHeaderNonce), req.Header(protocol::kHeaderSignature)};
  return devices.Authenticate(h, req.method, req.target, req.body);
}

void RegisterDeviceHandlers(Router& router, DeviceService& devices) {
  // ---- admin
  router
      .Add("POST", "/api/v1/devices", "devices", Auth::kAdmin, "devices.manage",
           "Create a device; returns its one-time enrolment code (valid 24 h)",
           [&devices](Request& r) {
             std::optional<int64_t> site;
             if (r.body.contains("site_id") && !r.body["site_id"].is_null())
               site = r.body["site_id"].get<int64_t>();
             const NewDevice d =
                 devices.Create(r.body["name"].get<std::string>(), r.body.value("doors", 1),
                                r.actor, site, ScopeOf(r.principal));
             return Reply::Json({{"device_id", d.device_id},
                                 {"enrolment_code", d.enrolment_code},
                                 {"expires_ms", d.expires_ms}},
                                201);
           })
      .Body(Obj({Req("name", Str("e.g. 3号楼1单元").MaxLength(200)),
                 Opt("doors", Int("doors the device controls").Range(1, 64)),
                 Opt("site_id", Int("the site the device is at (sites/{id})").Nullable())}));

  router
      .Add(
          "PATCH", "/api/v1/devices/{id}", "devices", Auth::kAdmin, "devices.manage",
          "Rename a device or place it at a site (site_id; null = none)",
          [&devices](Request& r) {
            return Reply::Json(devices.Update(r.Path("id"), r.body, r.actor, ScopeOf(r.principal)));
          })
      .Body(Obj({Opt("name", Str().MaxLength(200)),
                 Opt("site_id", Int("sites/{id}; null = no site").Nullable())}));

  router
      .Add("GET", "/api/v1/devices", "devices", Auth::kAdmin, "devices.read",
           "Devices with their health (last seen, version, outbox backlog, gallery version)",
           [&devices](Request& r) {
             const Paging p = ReadPaging(r);
             json page = devices.List(ScopeOf(r.principal), p.limit, p.offset);
             return Reply::Json(PageJson(page["items"], page["total"].get<int64_t>(), p));
           })
      .Query(PagingParams());

  router.Add("GET", "/api/v1/devices/{id}", "devices", Auth::kAdmin, "devices.read",
             "One device and its health",
             [&devices](Request& r) { return Reply::Json(devices.Get(r.Path("id"))); });

  router.Add("POST", "/api/v1/devices/{id}/enrolment-code", "devices", Auth::kAdmin,
             "devices.manage",
             "Issue a new one-time enrolment code (re-registration replaces the device key)",
             [&devices](Request& r) {
               const NewDevice d = devices.IssueCode(r.Path("id"), r.actor);
               return Reply::Json({{"device_id", d.device_id},
                                   {"enrolment_code", d.enrolment_code},
                                   {"expires_ms", d.expires_ms}},
                                  201);
             });

  router.Add("POST", "/api/v1/devices/{id}/revoke", "devices", Auth::kAdmin, "devices.manage",
             "Revoke a device: its key is refused from now on", [&devices](Request& r) {
               const std::string& id = r.Path("id");
               devices.Revoke(id, r.actor);
               return Reply::Json({{"device_id", id}, {"status", "revoked"}});
             });

  router
      .Add("POST", "/api/v1/devices/{id}/commands", "devices", Auth::kAdmin, "devices.manage",
           "Queue a command: open_door {door, duration_ms}, notice {text_zh, text_en, until_ms}, "
           "sync",
           [&devices](Request& r) {
             return Reply::Json(devices.QueueCommand(r.Path("id"), r.body, r.actor), 201);
           })
      .Body(Obj({Req("type", Str().Enum({"open_door", "notice", "sync"})),
                 Opt("door", Int().Range(0, 63)), Opt("duration_ms", Int().Range(0, 600000)),
                 Opt("text_zh", Str().MaxLength(2000)), Opt("text_en", Str().MaxLength(2000)),
                 Opt("until_ms", Int().Nullable())}));

  router
      .Add("GET", "/api/v1/devices/{id}/commands", "devices", Auth::kAdmin, "devices.read",
           "Commands of a device (pending and acknowledged)",
           [&devices](Request& r) {
             const Paging p = ReadPaging(r);
             json page = devices.Commands(r.Path("id"), p.limit, p.offset);
             return Reply::Json(PageJson(page["items"], page["total"].get<int64_t>(), p));
           })
      .Query(PagingParams());

  // ---- device protocol
  router
      .Add("POST", "/api/v1/device/register", "device protocol", Auth::kNone,
           "Register with a one-time enrolment code (unsigned); returns the device id, the "
           "SM2-encrypted device data key and the server public key",
           [&devices](Request& r) {
             const json& b = r.body;
             DeviceRegistration reg;
             reg.enrolment_code = b["enrolment_code"].get<std::string>();
             reg.public_key_pem = b["public_key"].get<std::string>();
             reg.name = b.value("name", "");
             reg.software_version = b.value("software_version", "");
             reg.model_version = b.value("model_version", "");
             reg.doors = b.value("doors", int64_t{1});
             return Reply::Json(devices.Register(reg));
           })
      .Body(Obj({Req("enrolment_code", Str().MaxLength(64)),
                 Req("public_key", Str("device SM2 public key, PEM").MaxLength(4096)),
                 Opt("name", Str().MaxLength(200)), Opt("software_version", Str().MaxLength(100)),
                 Opt("model_version", Str().MaxLength(200)), Opt("doors", Int().Range(1, 64))}));

  router
      .Add("GET", "/api/v1/device/gallery", "device protocol", Auth::kDevice,
           "Gallery changes since a version (adds, updates, removals; features sealed with "
           "the device data key)",
           [&devices](Request& r) {
             const int64_t since = r.QueryInt("since", 0, 0, int64_t(1) << 53);
             const int64_t limit = r.QueryInt("limit", kGalleryDefaultLimit, 1, kGalleryMaxLimit);
             return Reply::Json(devices.Gallery(r.actor, since, limit));
           })
      .Query({{"since", JType::kInteger, "the version the device has applied (0 = all)"},
              {"limit", JType::kInteger, "changes per answer, 1..500 (default 200)"}});

  router.Add("GET", "/api/v1/device/commands", "device protocol", Auth::kDevice,
             "Queued commands (stay until acknowledged)",
             [&devices](Request& r) { return Reply::Json(devices.PendingCommands(r.actor)); });

  router
      .Add("POST", "/api/v1/device/commands/ack", "device protocol", Auth::kDevice,
           "Acknowledge executed commands",
           [&devices](Request& r) {
             std::vector<std::string> ids;
             for (const auto& id : r.body["ids"]) ids.push_back(id.get<std::string>());
             return Reply::Json({{"acked", devices.Acknowledge(r.actor, ids)}});
           })
      .Body(Obj({Req("ids", Arr(Str("command id, e.g. c-17")).MaxLength(1000))}));

  router
      .Add("POST", "/api/v1/device/heartbeat", "device protocol", Auth::kDevice,
           "Device health: version, gallery version, outbox backlog, camera",
           [&devices](Request& r) { return Reply::Json(devices.Heartbeat(r.actor, r.body)); })
      .Body(Obj({Opt("software_version", Str().MaxLength(100)), Opt("gallery_version", Int()),
                 Opt("outbox_count", Int()), Opt("outbox_bytes", Int()),
                 Opt("outbox_oldest_ms", Int().Nullable()), Opt("camera", Str().MaxLength(100)),
                 Opt("uptime_s", Int())}));
}

}  // namespace anju::server
