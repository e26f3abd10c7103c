// Devices: creation with a one-time enrolment code (admin), the device protocol
// (docs/device-protocol.md: register, gallery, commands, heartbeat) and device health.
#include <nlohmann/json.hpp>

#include "crypto/sm3.h"
#include "protocol/api_error.h"
#include "server/audit/audit_log.h"
#include "server/audit/sealing.h"
#include "server/server_state.h"
#include "server/storage/site_scope.h"
#include "server/storage/site_thresholds_repo.h"

namespace anju::server {

using nlohmann::json;

namespace {

// 12 characters from an alphabet without look-alikes (0/O, 1/I/L), as XXXX-XXXX-XXXX.
std::string NewEnrolmentCode() {
  static constexpr char kAlphabet[] = "23456789ABCDEFGHJKMNPQRSTUVWXYZ";
  const auto bytes = crypto::RandomBytes(12);
  std::string code;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i && i % 4 == 0) code += '-';
    code += kAlphabet[bytes[i] % (sizeof(kAlphabet) - 1)];
  }
  return code;
}

std::string CodeHash(std::string code) {
  for (auto& c : code) c = char(std::toupper(static_cast<unsigned char>(c)));
  return crypto::Sm3Hex(code);
}

json DeviceJson(Stmt& s, int64_t latest, int64_t pending) {
  const int64_t now = NowMs();
  const auto last_seen = s.OptInt(7);
  return {{"device_id", s.Text(0)},
          {"name", s.Text(1)},
          {"doors", s.Int(2)},
          {"status", s.Text(3)},
          {"software_version", s.Text(4)},
          {"model_version", s.Text(5)},
          {"registered_ms", J(s.OptInt(6))},
          {"last_seen_ms", J(last_seen)},
          {"online", last_seen && now - *last_seen < 90'000},
          {"heartbeat", json::parse(s.Text(8))},
          {"gallery_version", s.Int(9)},
          {"latest_gallery_version", latest},
          {"commands_pending", pending},
          {"created_ms", s.Int(10)},
          {"site_id", J(s.OptInt(11))},
          {"site_name", s.IsNull(12) ? json() : json(s.Text(12))}};
}

constexpr const char* kDeviceCols =
    "id, name, doors, status, software_version, model_version, registered_ms, last_seen_ms, "
    "heartbeat, gallery_version, created_ms, site_id, "
    "(SELECT name FROM sites WHERE sites.id = devices.site_id)";

// 404 when SITE is outside the caller's sites (not revealed); 400 when there is no such site.
void CheckSite(Conn& conn, const SiteScope& scope, int64_t site) {
  if (!scope.HasSite(site)) NotFound("site " + std::to_string(site));
  Stmt s(conn, "SELECT 1 FROM sites WHERE id = ?");
  s.Bind(1, site);
  if (!s.Step())
    throw protocol::ApiError(400, "bad_request", "站点不存在 / no site " + std::to_string(site));
}

}  // namespace

NewDevice Server::Impl::CreateDevice(const std::string& name, int doors, const std::string& actor,
                                     std::optional<int64_t> site_id) {
  NewDevice d;
  d.enrolment_code = NewEnrolmentCode();
  d.expires_ms = NowMs() + options.enrolment_code_ttl_ms;
  auto conn = db->Acquire();
  Transaction tx(conn);
  for (;;) {
    d.device_id = "dev-" + crypto::ToHex(crypto::RandomBytes(4));
    Stmt e(conn, "SELECT 1 FROM devices WHERE id = ?");
    e.Bind(1, d.device_id);
    if (!e.Step()) break;
  }
  Stmt s(conn,
         "INSERT INTO devices(id, name, doors, status, created_ms, site_id) "
         "VALUES(?,?,?,'pending',?,?)");
  s.Bind(1, d.device_id).Bind(2, name).Bind(3, int64_t(doors)).Bind(4, NowMs());
  s.Bind(5, site_id).Run();
  Stmt c(conn,
         "INSERT INTO enrolment_codes(code_hash, device_id, expires_ms) VALUES(?,?,?)");
  c.Bind(1, CodeHash(d.enrolment_code)).Bind(2, d.device_id).Bind(3, d.expires_ms).Run();
  Audit(conn, actor, "device_create", "devices/" + d.device_id,
        {{"name", name}, {"doors", doors}, {"site_id", J(site_id)}});
  tx.Commit();
  return d;
}

NewDevice Server::CreateDevice(const std::string& name, int doors, const std::string& actor) {
  return impl_->CreateDevice(name, doors, actor);
}

void Server::Impl::AddDeviceRoutes() {
  // ---- admin
  router
      .Add("POST", "/api/v1/devices", "devices", Auth::kAdmin, "devices.manage",
           "Create a device; returns its one-time enrolment code (valid 24 h)",
           [this](Request& r) {
             std::optional<int64_t> site;
             if (r.body.contains("site_id") && !r.body["site_id"].is_null())
               site = r.body["site_id"].get<int64_t>();
             const SiteScope scope(r.principal);
             {
               auto conn = db->Acquire();
               if (site) CheckSite(conn, scope, *site);
             }
             // A device without a site would be invisible to an account limited to sites.
             if (!site && !scope.unscoped())
               throw protocol::ApiError(400, "bad_request",
                                        "须指定站点 / site_id required (account limited to sites)");
             const NewDevice d = CreateDevice(r.body["name"].get<std::string>(),
                                              r.body.value("doors", 1), r.actor, site);
             return Reply::Json({{"device_id", d.device_id},
                                 {"enrolment_code", d.enrolment_code},
                                 {"expires_ms", d.expires_ms}},
                                201);
           })
      .Body(Obj({Req("name", Str("e.g. 3号楼1单元").MaxLength(200)),
                 Opt("doors", Int("doors the device controls").Range(1, 64)),
                 Opt("site_id", Int("the site the device is at (sites/{id})").Nullable())}));

  router
      .Add("PATCH", "/api/v1/devices/{id}", "devices", Auth::kAdmin, "devices.manage",
           "Rename a device or place it at a site (site_id; null = none)",
           [this](Request& r) {
             const std::string& id = r.Path("id");
             const SiteScope scope(r.principal);
             auto conn = db->Acquire();
             Transaction tx(conn);
             scope.RequireDevice(conn, id);
             {
               Stmt e(conn, "SELECT 1 FROM devices WHERE id = ?");
               e.Bind(1, id);
               if (!e.Step()) NotFound("device " + id);
             }
             if (r.body.contains("site_id")) {
               const json& v = r.body["site_id"];
               if (v.is_null() && !scope.unscoped())
                 throw protocol::ApiError(
                     400, "bad_request",
                     "须指定站点 / site_id required (account limited to sites)");
               if (!v.is_null()) CheckSite(conn, scope, v.get<int64_t>());
               Stmt s(conn, "UPDATE devices SET site_id = ? WHERE id = ?");
               if (v.is_null())
                 s.BindNull(1);
               else
                 s.Bind(1, v.get<int64_t>());
               s.Bind(2, id).Run();
             }
             if (r.body.contains("name")) {
               Stmt s(conn, "UPDATE devices SET name = ? WHERE id = ?");
               s.Bind(1, r.body["name"].get<std::string>()).Bind(2, id).Run();
             }
             Audit(conn, r.actor, "device_update", "devices/" + id, r.body);
             Stmt s(conn,
                    std::string("SELECT ") + kDeviceCols + " FROM devices WHERE id = ?");
             s.Bind(1, id);
             s.Step();
             Stmt q(conn,
                    "SELECT COUNT(*) FROM commands WHERE device_id = ? AND acked_ms IS NULL");
             q.Bind(1, id).Step();
             json out = DeviceJson(s, sync->Latest(conn, id), q.Int(0));
             tx.Commit();
             return Reply::Json(out);
           })
      .Body(Obj({Opt("name", Str().MaxLength(200)),
                 Opt("site_id", Int("sites/{id}; null = no site").Nullable())}));

  router
      .Add("GET", "/api/v1/devices", "devices", Auth::kAdmin, "devices.read",
           "Devices with their health (last seen, version, outbox backlog, gallery version)",
           [this](Request& r) {
             const Paging p = ReadPaging(r);
             auto conn = db->Acquire();
             const std::string where = " WHERE " + SiteScope(r.principal).SiteCondition("site_id");
             Stmt c(conn, "SELECT COUNT(*) FROM devices" + where);
             c.Step();
             Stmt s(conn, std::string("SELECT ") + kDeviceCols + " FROM devices" + where +
                                      " ORDER BY created_ms LIMIT ? OFFSET ?");
             s.Bind(1, p.limit).Bind(2, p.offset);
             json items = json::array();
             while (s.Step()) {
               const std::string id = s.Text(0);
               Stmt q(conn,
                      "SELECT COUNT(*) FROM commands WHERE device_id = ? AND acked_ms IS NULL");
               q.Bind(1, id).Step();
               items.push_back(DeviceJson(s, sync->Latest(conn, id), q.Int(0)));
             }
             return Reply::Json(PageJson(items, c.Int(0), p));
           })
      .Query(PagingParams());

  router.Add("GET", "/api/v1/devices/{id}", "devices", Auth::kAdmin, "devices.read",
             "One device and its health", [this](Request& r) {
               const std::string& id = r.Path("id");
               auto conn = db->Acquire();
               Stmt s(conn,
                      std::string("SELECT ") + kDeviceCols + " FROM devices WHERE id = ?");
               s.Bind(1, id);
               if (!s.Step()) NotFound("device " + id);
               Stmt q(conn,
                      "SELECT COUNT(*) FROM commands WHERE device_id = ? AND acked_ms IS NULL");
               q.Bind(1, id).Step();
               return Reply::Json(DeviceJson(s, sync->Latest(conn, id), q.Int(0)));
             });

  router.Add(
      "POST", "/api/v1/devices/{id}/enrolment-code", "devices", Auth::kAdmin, "devices.manage",
      "Issue a new one-time enrolment code (re-registration replaces the device key)",
      [this](Request& r) {
        const std::string& id = r.Path("id");
        const std::string code = NewEnrolmentCode();
        const int64_t expires = NowMs() + options.enrolment_code_ttl_ms;
        auto conn = db->Acquire();
        Transaction tx(conn);
        Stmt e(conn, "SELECT status FROM devices WHERE id = ?");
        e.Bind(1, id);
        if (!e.Step()) NotFound("device " + id);
        if (e.Text(0) == "revoked")
          throw protocol::ApiError(409, "conflict", "设备已吊销 / device is revoked");
        Stmt c(conn,
               "INSERT INTO enrolment_codes(code_hash, device_id, expires_ms) VALUES(?,?,?)");
        c.Bind(1, CodeHash(code)).Bind(2, id).Bind(3, expires).Run();
        Audit(conn, r.actor, "device_code", "devices/" + id);
        tx.Commit();
        return Reply::Json({{"device_id", id}, {"enrolment_code", code}, {"expires_ms", expires}},
                           201);
      });

  router.Add("POST", "/api/v1/devices/{id}/revoke", "devices", Auth::kAdmin, "devices.manage",
             "Revoke a device: its key is refused from now on", [this](Request& r) {
               const std::string& id = r.Path("id");
               {
                 auto conn = db->Acquire();
                 Transaction tx(conn);
                 Stmt s(conn, "UPDATE devices SET status = 'revoked' WHERE id = ?");
                 s.Bind(1, id).Run();
                 if (conn.Changes() == 0) NotFound("device " + id);
                 Stmt c(conn,
                        "UPDATE enrolment_codes SET used_ms = ? WHERE device_id = ? AND used_ms "
                        "IS NULL");
                 c.Bind(1, NowMs()).Bind(2, id).Run();
                 Audit(conn, r.actor, "device_revoke", "devices/" + id);
                 tx.Commit();
               }
               ForgetDevice(id);
               return Reply::Json({{"device_id", id}, {"status", "revoked"}});
             });

  router
      .Add("POST", "/api/v1/devices/{id}/commands", "devices", Auth::kAdmin, "devices.manage",
           "Queue a command: open_door {door, duration_ms}, notice {text_zh, text_en, until_ms}, "
           "sync",
           [this](Request& r) {
             const std::string& id = r.Path("id");
             json cmd = r.body;
             const std::string type = cmd["type"].get<std::string>();
             if (type != "open_door") cmd.erase("door"), cmd.erase("duration_ms");
             if (type == "open_door") cmd["door"] = cmd.value("door", 0);
             if (type == "notice" && !cmd.contains("text_zh") && !cmd.contains("text_en"))
               throw protocol::ApiError(400, "bad_request", "notice 需要文字 / notice needs text");
             auto conn = db->Acquire();
             Transaction tx(conn);
             Stmt e(conn, "SELECT 1 FROM devices WHERE id = ?");
             e.Bind(1, id);
             if (!e.Step()) NotFound("device " + id);
             Stmt s(
                 conn,
                 "INSERT INTO commands(device_id, body, created_ms, created_by) VALUES(?,?,?,?)");
             s.Bind(1, id).Bind(2, cmd.dump()).Bind(3, NowMs()).Bind(4, r.actor).Run();
             const int64_t cid = conn.LastInsertId();
             Audit(conn, r.actor, "command", "devices/" + id, cmd);
             tx.Commit();
             cmd["id"] = "c-" + std::to_string(cid);
             return Reply::Json(cmd, 201);
           })
      .Body(Obj({Req("type", Str().Enum({"open_door", "notice", "sync"})),
                 Opt("door", Int().Range(0, 63)), Opt("duration_ms", Int().Range(0, 600000)),
                 Opt("text_zh", Str().MaxLength(2000)), Opt("text_en", Str().MaxLength(2000)),
                 Opt("until_ms", Int().Nullable())}));

  router
      .Add("GET", "/api/v1/devices/{id}/commands", "devices", Auth::kAdmin, "devices.read",
           "Commands of a device (pending and acknowledged)",
           [this](Request& r) {
             const Paging p = ReadPaging(r);
             auto conn = db->Acquire();
             Stmt c(conn, "SELECT COUNT(*) FROM commands WHERE device_id = ?");
             c.Bind(1, r.Path("id")).Step();
             Stmt s(conn,
                    "SELECT id, body, created_ms, created_by, acked_ms FROM commands WHERE "
                    "device_id = ? ORDER BY id DESC LIMIT ? OFFSET ?");
             s.Bind(1, r.Path("id")).Bind(2, p.limit).Bind(3, p.offset);
             json items = json::array();
             while (s.Step()) {
               json cmd = json::parse(s.Text(1));
               cmd["id"] = "c-" + std::to_string(s.Int(0));
               items.push_back({{"command", cmd},
                                {"created_ms", s.Int(2)},
                                {"created_by", s.Text(3)},
                                {"acked_ms", J(s.OptInt(4))}});
             }
             return Reply::Json(PageJson(items, c.Int(0), p));
           })
      .Query(PagingParams());

  // ---- device protocol
  router
      .Add("POST", "/api/v1/device/register", "device protocol", Auth::kNone,
           "Register with a one-time enrolment code (unsigned); returns the device id, the "
           "SM2-encrypted device data key and the server public key",
           [this](Request& r) {
             const json& b = r.body;
             const auto refuse = [] {
               throw protocol::ApiError(403, "enrolment_code_invalid",
                                        "注册码无效、已用或过期 / enrolment code unknown, used or "
                                        "expired");
             };
             crypto::Sm2Key device_key = [&] {
               try {
                 return crypto::Sm2Key::FromPublicPem(b["public_key"].get<std::string>());
               } catch (const Error&) {
                 throw protocol::ApiError(400, "bad_request",
                                          "public_key 不是 SM2 公钥 / public_key: not an SM2 PEM");
               }
             }();
             const std::string mv = b.value("model_version", "");
             if (!gate->model_version().empty() && !mv.empty() && mv != gate->model_version())
               throw protocol::ApiError(409, "conflict",
                                        "模型版本不一致 / model version " + mv +
                                            " differs from the server's " + gate->model_version());
             const crypto::DataKey data_key = crypto::DataKey::Generate();
             const int64_t now = NowMs();
             std::string device_id;
             {
               auto conn = db->Acquire();
               Transaction tx(conn);
               Stmt c(conn,
                      "SELECT device_id, expires_ms, used_ms FROM enrolment_codes WHERE "
                      "code_hash = ?");
               c.Bind(1, CodeHash(b["enrolment_code"].get<std::string>()));
               if (!c.Step() || !c.IsNull(2) || c.Int(1) < now) refuse();
               device_id = c.Text(0);
               Stmt d(conn, "SELECT status FROM devices WHERE id = ?");
               d.Bind(1, device_id);
               if (!d.Step() || d.Text(0) == "revoked") refuse();
               Stmt u(conn, "UPDATE enrolment_codes SET used_ms = ? WHERE code_hash = ?");
               u.Bind(1, now).Bind(2, CodeHash(b["enrolment_code"].get<std::string>())).Run();
               Stmt s(conn,
                      "UPDATE devices SET status = 'active', public_key = ?, data_key_sealed = ?, "
                      "software_version = ?, model_version = ?, registered_ms = ?, last_seen_ms = "
                      "?, doors = MAX(doors, ?), name = CASE WHEN ? = '' THEN name ELSE ? END "
                      "WHERE id = ?");
               const std::string name = b.value("name", "");
               s.Bind(1, device_key.PublicPem())
                   .Bind(2, std::span<const uint8_t>(
                                SealDeviceKey(keys.data_key, device_id, data_key)))
                   .Bind(3, b.value("software_version", ""))
                   .Bind(4, mv)
                   .Bind(5, now)
                   .Bind(6, now)
                   .Bind(7, b.value("doors", int64_t{1}))
                   .Bind(8, name)
                   .Bind(9, name)
                   .Bind(10, device_id)
                   .Run();
               Audit(conn, "device:" + device_id, "device_register", "devices/" + device_id,
                     {{"key", device_key.Fingerprint()},
                      {"software_version", b.value("software_version", "")}});
               tx.Commit();
             }
             ForgetDevice(device_id);
             return Reply::Json({{"device_id", device_id},
                                 {"data_key", crypto::ToHex(device_key.Encrypt(data_key.bytes()))},
                                 {"server_public_key", keys.server_key.PublicPem()},
                                 {"server_time_ms", now}});
           })
      .Body(Obj({Req("enrolment_code", Str().MaxLength(64)),
                 Req("public_key", Str("device SM2 public key, PEM").MaxLength(4096)),
                 Opt("name", Str().MaxLength(200)), Opt("software_version", Str().MaxLength(100)),
                 Opt("model_version", Str().MaxLength(200)), Opt("doors", Int().Range(1, 64))}));

  router
      .Add("GET", "/api/v1/device/gallery", "device protocol", Auth::kDevice,
           "Gallery changes since a version (adds, updates, removals; features sealed with "
           "the device data key)",
           [this](Request& r) {
             const int64_t since = r.QueryInt("since", 0, 0, int64_t(1) << 53);
             const int64_t limit = r.QueryInt("limit", kGalleryDefaultLimit, 1, kGalleryMaxLimit);
             const auto dev = Device(r.actor);
             auto conn = db->Acquire();
             json page = sync->Fetch(conn, r.actor, dev->data_key, since, limit);
             // The site's calibrated levels (docs/device-protocol.md, "thresholds"): in every
             // answer, so a recalibration reaches the terminals with their next poll.
             const json levels = site_thresholds->ForTerminals(
                 storage::SiteThresholdsRepo::SiteOfDevice(conn, r.actor));
             if (!levels.is_null()) page["thresholds"] = levels;
             return Reply::Json(page);
           })
      .Query({{"since", JType::kInteger, "the version the device has applied (0 = all)"},
              {"limit", JType::kInteger, "changes per answer, 1..500 (default 200)"}});

  router.Add("GET", "/api/v1/device/commands", "device protocol", Auth::kDevice,
             "Queued commands (stay until acknowledged)", [this](Request& r) {
               auto conn = db->Acquire();
               Stmt s(conn,
                      "SELECT id, body FROM commands WHERE device_id = ? AND acked_ms IS NULL "
                      "ORDER BY id LIMIT 100");
               s.Bind(1, r.actor);
               json cmds = json::array();
               while (s.Step()) {
                 json c = json::parse(s.Text(1));
                 c["id"] = "c-" + std::to_string(s.Int(0));
                 cmds.push_back(c);
               }
               Stmt t(conn, "UPDATE devices SET last_seen_ms = ? WHERE id = ?");
               t.Bind(1, NowMs()).Bind(2, r.actor).Run();
               return Reply::Json({{"commands", cmds}});
             });

  router
      .Add("POST", "/api/v1/device/commands/ack", "device protocol", Auth::kDevice,
           "Acknowledge executed commands",
           [this](Request& r) {
             auto conn = db->Acquire();
             Transaction tx(conn);
             int acked = 0;
             for (const auto& id : r.body["ids"]) {
               const std::string s = id.get<std::string>();
               if (s.size() < 3 || s.compare(0, 2, "c-") != 0) continue;
               Stmt u(conn,
                      "UPDATE commands SET acked_ms = ? WHERE id = ? AND device_id = ? AND "
                      "acked_ms IS NULL");
               u.Bind(1, NowMs()).Bind(2, std::string_view(s).substr(2)).Bind(3, r.actor).Run();
               acked += conn.Changes();
             }
             tx.Commit();
             return Reply::Json({{"acked", acked}});
           })
      .Body(Obj({Req("ids", Arr(Str("command id, e.g. c-17")).MaxLength(1000))}));

  router
      .Add("POST", "/api/v1/device/heartbeat", "device protocol", Auth::kDevice,
           "Device health: version, gallery version, outbox backlog, camera",
           [this](Request& r) {
             auto conn = db->Acquire();
             const int64_t now = NowMs();
             json hb = r.body;
             hb["received_ms"] = now;
             Stmt s(conn,
                    "UPDATE devices SET last_seen_ms = ?, heartbeat = ?, software_version = "
                    "COALESCE(?, software_version) WHERE id = ?");
             s.Bind(1, now).Bind(2, hb.dump());
             if (r.body.contains("software_version"))
               s.Bind(3, r.body["software_version"].get<std::string>());
             else
               s.BindNull(3);
             s.Bind(4, r.actor).Run();
             Stmt q(conn,
                    "SELECT COUNT(*) FROM commands WHERE device_id = ? AND acked_ms IS NULL");
             q.Bind(1, r.actor).Step();
             return Reply::Json({{"server_time_ms", now},
                                 {"latest_gallery_version", sync->Latest(conn, r.actor)},
                                 {"commands_pending", q.Int(0)}});
           })
      .Body(Obj({Opt("software_version", Str().MaxLength(100)), Opt("gallery_version", Int()),
                 Opt("outbox_count", Int()), Opt("outbox_bytes", Int()),
                 Opt("outbox_oldest_ms", Int().Nullable()), Opt("camera", Str().MaxLength(100)),
                 Opt("uptime_s", Int())}));
}

}  // namespace anju::server
