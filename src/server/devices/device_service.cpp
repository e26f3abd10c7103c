#include "server/devices/device_service.h"

#include <spdlog/spdlog.h>
#include <cctype>

#include "core/clock.h"
#include "core/error.h"
#include "crypto/bytes.h"
#include "crypto/sm3.h"
#include "server/access/account_support.h"
#include "server/audit/audit_log.h"
#include "server/audit/sealing.h"
#include "server/storage/device_repo.h"
#include "server/storage/site_scope.h"

namespace anju::server {

using nlohmann::json;
using storage::DeviceRepo;

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

// Codes are typed by people: case does not matter. Only the hash is stored.
std::string CodeHash(std::string code) {
  for (auto& c : code) c = char(std::toupper(static_cast<unsigned char>(c)));
  return crypto::Sm3Hex(code);
}

json Nullable(const std::optional<int64_t>& v) {
  return v ? json(*v) : json();
}

json DeviceJson(const storage::DeviceRow& d, int64_t latest, int64_t pending) {
  const int64_t now = NowMs();
  return {{"device_id", d.id},
          {"name", d.name},
          {"doors", d.doors},
          {"status", d.status},
          {"software_version", d.software_version},
          {"model_version", d.model_version},
          {"registered_ms", Nullable(d.registered_ms)},
          {"last_seen_ms", Nullable(d.last_seen_ms)},
          // A device sends a heartbeat every 30 s (docs/device-protocol.md).
          {"online", d.last_seen_ms && now - *d.last_seen_ms < 90'000},
          {"heartbeat", json::parse(d.heartbeat)},
          {"gallery_version", d.gallery_version},
          {"latest_gallery_version", latest},
          {"commands_pending", pending},
          {"created_ms", d.created_ms},
          {"site_id", Nullable(d.site_id)},
          {"site_name", d.site_name ? json(*d.site_name) : json()}};
}

// Not found (not revealed) when SITE is outside the caller's sites; bad request when there
// is no such site.
void CheckSite(db::Conn& conn, const SiteScope& scope, int64_t site) {
  if (!scope.HasSite(site)) NotFound("site " + std::to_string(site));
  if (!DeviceRepo::SiteExists(conn, site))
    throw Error(ErrorCode::kInvalidArgument, "站点不存在 / no site " + std::to_string(site));
}

[[noreturn]] void SiteRequired() {
  throw Error(ErrorCode::kInvalidArgument,
              "须指定站点 / site_id required (account limited to sites)");
}

// One answer for an unknown, used or expired code and a revoked device.
[[noreturn]] void RefuseCode() {
  throw Error(ErrorCode::kPermissionDenied,
              "注册码无效、已用或过期 / enrolment code unknown, used or expired",
              "enrolment_code_invalid");
}

std::string CommandId(int64_t id) {
  return "c-" + std::to_string(id);
}

}  // namespace

DeviceService::DeviceService(DeviceDeps deps) : deps_(std::move(deps)) {
  if (deps_.notifier)
    control_ = deps_.notifier->Subscribe("control", [this](const json& m) {
      if (m.is_object() && m.contains("device_forget") && m["device_forget"].is_string())
        ForgetLocally(m["device_forget"].get<std::string>());
    });
}

DeviceService::~DeviceService() = default;

json DeviceService::DeviceJson(db::Conn& conn, const std::string& id) {
  const auto d = DeviceRepo::Get(conn, id);
  if (!d) NotFound("device " + id);
  return server::DeviceJson(*d, deps_.gallery->Latest(conn, id),
                            DeviceRepo::PendingCommands(conn, id));
}

NewDevice DeviceService::Create(const std::string& name, int doors, const std::string& actor,
                                std::optional<int64_t> site, const Scope& scope) {
  const SiteScope sites(scope);
  auto conn = deps_.db->Acquire();
  if (site) CheckSite(conn, sites, *site);
  // A device without a site would be invisible to an account limited to sites.
  if (!site && !sites.unscoped()) SiteRequired();
  NewDevice d;
  d.enrolment_code = NewEnrolmentCode();
  d.expires_ms = NowMs() + deps_.enrolment_code_ttl_ms;
  db::Transaction tx(conn);
  do d.device_id = "dev-" + crypto::ToHex(crypto::RandomBytes(4));
  while (DeviceRepo::Exists(conn, d.device_id));
  DeviceRepo::Insert(conn, d.device_id, name, doors, NowMs(), site);
  DeviceRepo::InsertCode(conn, CodeHash(d.enrolment_code), d.device_id, d.expires_ms);
  Audit(conn, actor, "device_create", "devices/" + d.device_id,
        {{"name", name}, {"doors", doors}, {"site_id", Nullable(site)}});
  tx.Commit();
  return d;
}

json DeviceService::Update(const std::string& id, const json& change, const std::string& actor,
                           const Scope& scope) {
  const SiteScope sites(scope);
  auto conn = deps_.db->Acquire();
  db::Transaction tx(conn);
  sites.RequireDevice(conn, id);
  if (!DeviceRepo::Exists(conn, id)) NotFound("device " + id);
  if (change.contains("site_id")) {
    const json& v = change["site_id"];
    if (v.is_null() && !sites.unscoped()) SiteRequired();
    std::optional<int64_t> site;
    if (!v.is_null()) {
      site = v.get<int64_t>();
      CheckSite(conn, sites, *site);
    }
    DeviceRepo::SetSite(conn, id, site);
  }
  if (change.contains("name")) DeviceRepo::SetName(conn, id, change["name"].get<std::string>());
  Audit(conn, actor, "device_update", "devices/" + id, change);
  json out = DeviceJson(conn, id);
  tx.Commit();
  return out;
}

json DeviceService::List(const Scope& scope, int64_t limit, int64_t offset) {
  const SiteScope sites(scope);
  auto conn = deps_.db->Acquire();
  const int64_t total = DeviceRepo::Count(conn, sites);
  json items = json::array();
  for (const auto& d : DeviceRepo::List(conn, sites, limit, offset))
    items.push_back(server::DeviceJson(d, deps_.gallery->Latest(conn, d.id),
                                       DeviceRepo::PendingCommands(conn, d.id)));
  return {{"items", items}, {"total", total}};
}

json DeviceService::Get(const std::string& id) {
  auto conn = deps_.db->Acquire();
  return DeviceJson(conn, id);
}

NewDevice DeviceService::IssueCode(const std::string& id, const std::string& actor) {
  NewDevice d{id, NewEnrolmentCode(), NowMs() + deps_.enrolment_code_ttl_ms};
  auto conn = deps_.db->Acquire();
  db::Transaction tx(conn);
  const auto status = DeviceRepo::Status(conn, id);
  if (!status) NotFound("device " + id);
  if (*status == "revoked") throw Error(ErrorCode::kConflict, "设备已吊销 / device is revoked");
  DeviceRepo::InsertCode(conn, CodeHash(d.enrolment_code), id, d.expires_ms);
  Audit(conn, actor, "device_code", "devices/" + id);
  tx.Commit();
  return d;
}

void DeviceService::Revoke(const std::string& id, const std::string& actor) {
  {
    auto conn = deps_.db->Acquire();
    db::Transaction tx(conn);
    if (!DeviceRepo::SetRevoked(conn, id)) NotFound("device " + id);
    DeviceRepo::UseCodesOf(conn, id, NowMs());
    Audit(conn, actor, "device_revoke", "devices/" + id);
    tx.Commit();
  }
  // Its key is refused from the next request on.
  Forget(id);
}

json DeviceService::QueueCommand(const std::string& id, json cmd, const std::string& actor) {
  const std::string type = cmd["type"].get<std::string>();
  if (type != "open_door") cmd.erase("door"), cmd.erase("duration_ms");
  if (type == "open_door") cmd["door"] = cmd.value("door", 0);
  if (type == "notice" && !cmd.contains("text_zh") && !cmd.contains("text_en"))
    throw Error(ErrorCode::kInvalidArgument, "notice 需要文字 / notice needs text");
  auto conn = deps_.db->Acquire();
  db::Transaction tx(conn);
  if (!DeviceRepo::Exists(conn, id)) NotFound("device " + id);
  const int64_t cid = DeviceRepo::InsertCommand(conn, id, cmd.dump(), NowMs(), actor);
  Audit(conn, actor, "command", "devices/" + id, cmd);
  tx.Commit();
  cmd["id"] = CommandId(cid);
  return cmd;
}

json DeviceService::Commands(const std::string& id, int64_t limit, int64_t offset) {
  auto conn = deps_.db->Acquire();
  const int64_t total = DeviceRepo::CountCommands(conn, id);
  json items = json::array();
  for (const auto& c : DeviceRepo::Commands(conn, id, limit, offset)) {
    json cmd = json::parse(c.body);
    cmd["id"] = CommandId(c.id);
    items.push_back({{"command", cmd},
                     {"created_ms", c.created_ms},
                     {"created_by", c.created_by},
                     {"acked_ms", Nullable(c.acked_ms)}});
  }
  return {{"items", items}, {"total", total}};
}

json DeviceService::Register(const DeviceRegistration& r) {
  crypto::Sm2Key device_key = [&] {
    try {
      return crypto::Sm2Key::FromPublicPem(r.public_key_pem);
    } catch (const Error&) {
      throw Error(ErrorCode::kInvalidArgument,
                  "public_key 不是 SM2 公钥 / public_key: not an SM2 PEM");
    }
  }();
  const std::string& mv = r.model_version;
  if (!deps_.model_version.empty() && !mv.empty() && mv != deps_.model_version)
    throw Error(ErrorCode::kConflict, "模型版本不一致 / model version " + mv +
                                          " differs from the server's " + deps_.model_version);
  const crypto::DataKey data_key = crypto::DataKey::Generate();
  const int64_t now = NowMs();
  const std::string hash = CodeHash(r.enrolment_code);
  std::string device_id;
  {
    auto conn = deps_.db->Acquire();
    db::Transaction tx(conn);
    const auto code = DeviceRepo::Code(conn, hash);
    if (!code || code->used_ms || code->expires_ms < now) RefuseCode();
    device_id = code->device_id;
    const auto status = DeviceRepo::Status(conn, device_id);
    if (!status || *status == "revoked") RefuseCode();
    DeviceRepo::UseCode(conn, hash, now);
    const auto sealed = SealDeviceKey(deps_.data_key, device_id, data_key);
    DeviceRepo::Register(
        conn, device_id,
        {device_key.PublicPem(), std::vector<uint8_t>(sealed.begin(), sealed.end()),
         r.software_version, mv, r.name, r.doors, now});
    Audit(conn, "device:" + device_id, "device_register", "devices/" + device_id,
          {{"key", device_key.Fingerprint()}, {"software_version", r.software_version}});
    tx.Commit();
  }
  // A re-registration replaces the key the cache may hold.
  Forget(device_id);
  return {{"device_id", device_id},
          {"data_key", crypto::ToHex(device_key.Encrypt(data_key.bytes()))},
          {"server_public_key", deps_.server_public_key_pem},
          {"server_time_ms", now}};
}

std::optional<DeviceKeys> DeviceService::Keys(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(id); it != cache_.end()) return it->second;
  }
  std::optional<storage::DeviceKeyRow> row;
  {
    auto conn = deps_.db->Acquire();
    row = DeviceRepo::Keys(conn, id);
  }
  if (!row) return std::nullopt;
  DeviceKeys k{crypto::Sm2Key::FromPublicPem(row->public_key_pem),
               OpenDeviceKey(deps_.data_key, id, row->data_key_sealed), row->status == "active"};
  std::lock_guard lock(mu_);
  cache_.emplace(id, k);
  return k;
}

void DeviceService::Forget(const std::string& id) {
  ForgetLocally(id);
  if (!deps_.notifier) return;
  try {
    deps_.notifier->Publish("control", json{{"device_forget", id}});
  } catch (const std::exception& e) {
    // At most once by design (runtime/notifier.h): the others keep the key until they
    // restart. Said loudly, since a revoked device stays admitted there meanwhile.
    spdlog::error("device {}: the other servers were not told to drop its key: {}", id, e.what());
  }
}

void DeviceService::ForgetLocally(const std::string& id) {
  std::lock_guard lock(mu_);
  cache_.erase(id);
}

std::string DeviceService::Authenticate(const protocol::SignedHeaders& h, const std::string& method,
                                        const std::string& target, const std::string& body) {
  auto refuse = [](const std::string& reason, const std::string& msg) {
    throw Error(ErrorCode::kUnauthenticated, msg, reason == "unauthenticated" ? "" : reason);
  };
  if (h.device.empty() || h.signature.empty())
    refuse("unauthenticated", "缺少设备签名 / device signature headers missing");
  const auto dev = Keys(h.device);
  if (!dev || !dev->active)
    refuse("unauthenticated", "未知或已吊销的设备 / unknown or revoked device");
  const auto verdict = protocol::VerifyRequest(h, dev->public_key, method, target, body);
  if (verdict == protocol::AuthResult::kClockSkew)
    refuse("clock_skew", "设备时钟偏差超过 5 分钟 / device clock more than 5 minutes off");
  if (verdict != protocol::AuthResult::kOk)
    refuse("unauthenticated", "设备签名无效 / bad device signature");
  // After the signature, so unauthenticated traffic cannot fill the cache.
  const bool fresh = deps_.shared_nonces ? deps_.shared_nonces->PutIfAbsent(
                                               "device-nonce." + h.device + "." + h.nonce, "1",
                                               protocol::kNonceMemory)
                                         : nonces_.CheckAndRemember(h.device, h.nonce);
  if (!fresh) refuse("replayed", "重复的请求 / nonce already used (replayed request)");
  return h.device;
}

json DeviceService::Gallery(const std::string& device_id, int64_t since, int64_t limit) {
  const auto dev = Keys(device_id);
  if (!dev) NotFound("device " + device_id);
  auto conn = deps_.db->Acquire();
  json page = deps_.gallery->Fetch(conn, device_id, dev->data_key, since, limit);
  // The site's calibrated levels (docs/device-protocol.md, "thresholds"): in every answer,
  // so a recalibration reaches the terminals with their next poll.
  if (deps_.terminal_levels) {
    const json levels = deps_.terminal_levels(conn, device_id);
    if (!levels.is_null()) page["thresholds"] = levels;
  }
  return page;
}

json DeviceService::PendingCommands(const std::string& device_id) {
  auto conn = deps_.db->Acquire();
  json cmds = json::array();
  for (const auto& c : DeviceRepo::Unacked(conn, device_id, 100)) {
    json cmd = json::parse(c.body);
    cmd["id"] = CommandId(c.id);
    cmds.push_back(cmd);
  }
  DeviceRepo::Touch(conn, device_id, NowMs());
  return {{"commands", cmds}};
}

int DeviceService::Acknowledge(const std::string& device_id, const std::vector<std::string>& ids) {
  auto conn = deps_.db->Acquire();
  db::Transaction tx(conn);
  int acked = 0;
  for (const auto& s : ids) {
    if (s.size() < 3 || s.compare(0, 2, "c-") != 0) continue;
    acked += DeviceRepo::Ack(conn, std::string_view(s).substr(2), device_id, NowMs());
  }
  tx.Commit();
  return acked;
}

json DeviceService::Heartbeat(const std::string& device_id, const json& body) {
  auto conn = deps_.db->Acquire();
  const int64_t now = NowMs();
  json hb = body;
  hb["received_ms"] = now;
  std::optional<std::string> version;
  if (body.contains("software_version")) version = body["software_version"].get<std::string>();
  DeviceRepo::Heartbeat(conn, device_id, now, hb.dump(), version);
  return {{"server_time_ms", now},
          {"latest_gallery_version", deps_.gallery->Latest(conn, device_id)},
          {"commands_pending", DeviceRepo::PendingCommands(conn, device_id)}};
}

}  // namespace anju::server
