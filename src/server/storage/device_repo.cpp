#include "server/storage/device_repo.h"

#include "server/storage/repo_sql.h"
#include "server/storage/site_scope.h"

namespace anju::server::storage {

using db::Stmt;

namespace {

constexpr const char* kDeviceCols =
    "id, name, doors, status, software_version, model_version, registered_ms, last_seen_ms, "
    "heartbeat, gallery_version, created_ms, site_id, "
    "(SELECT name FROM sites WHERE sites.id = devices.site_id)";

DeviceRow ReadDevice(const Stmt& s) {
  DeviceRow d;
  d.id = s.Text(0);
  d.name = s.Text(1);
  d.doors = s.Int(2);
  d.status = s.Text(3);
  d.software_version = s.Text(4);
  d.model_version = s.Text(5);
  d.registered_ms = s.OptInt(6);
  d.last_seen_ms = s.OptInt(7);
  d.heartbeat = s.Text(8);
  d.gallery_version = s.Int(9);
  d.created_ms = s.Int(10);
  d.site_id = s.OptInt(11);
  if (!s.IsNull(12)) d.site_name = s.Text(12);
  return d;
}

}  // namespace

bool DeviceRepo::Exists(db::Conn& c, const std::string& id) {
  Stmt e(c, "SELECT 1 FROM devices WHERE id = ?");
  e.Bind(1, id);
  return e.Step();
}

std::optional<std::string> DeviceRepo::Status(db::Conn& c, const std::string& id) {
  Stmt e(c, "SELECT status FROM devices WHERE id = ?");
  e.Bind(1, id);
  if (!e.Step()) return std::nullopt;
  return e.Text(0);
}

std::optional<int64_t> DeviceRepo::Doors(db::Conn& c, const std::string& id) {
  Stmt s(c, "SELECT doors FROM devices WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return s.Int(0);
}

void DeviceRepo::Insert(db::Conn& c, const std::string& id, const std::string& name, int64_t doors,
                        int64_t created_ms, std::optional<int64_t> site_id) {
  Stmt s(c,
         "INSERT INTO devices(id, name, doors, status, created_ms, site_id) "
         "VALUES(?,?,?,'pending',?,?)");
  s.Bind(1, id).Bind(2, name).Bind(3, doors).Bind(4, created_ms);
  s.Bind(5, site_id).Run();
}

std::optional<DeviceRow> DeviceRepo::Get(db::Conn& c, const std::string& id) {
  Stmt s(c, std::string("SELECT ") + kDeviceCols + " FROM devices WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return ReadDevice(s);
}

int64_t DeviceRepo::Count(db::Conn& c, const SiteScope& scope) {
  Stmt n(c, "SELECT COUNT(*) FROM devices WHERE " + scope.SiteCondition("site_id"));
  n.Step();
  return n.Int(0);
}

int64_t DeviceRepo::CountActive(db::Conn& c) {
  Stmt n(c, "SELECT COUNT(*) FROM devices WHERE status = 'active'");
  n.Step();
  return n.Int(0);
}

std::vector<DeviceRow> DeviceRepo::List(db::Conn& c, const SiteScope& scope, int64_t limit,
                                        int64_t offset) {
  Stmt s(c, std::string("SELECT ") + kDeviceCols + " FROM devices WHERE " +
                scope.SiteCondition("site_id") + " ORDER BY created_ms LIMIT ? OFFSET ?");
  s.Bind(1, limit).Bind(2, offset);
  std::vector<DeviceRow> out;
  while (s.Step()) out.push_back(ReadDevice(s));
  return out;
}

void DeviceRepo::SetSite(db::Conn& c, const std::string& id, std::optional<int64_t> site_id) {
  Stmt s(c, "UPDATE devices SET site_id = ? WHERE id = ?");
  s.Bind(1, site_id).Bind(2, id).Run();
}

void DeviceRepo::SetName(db::Conn& c, const std::string& id, const std::string& name) {
  Stmt s(c, "UPDATE devices SET name = ? WHERE id = ?");
  s.Bind(1, name).Bind(2, id).Run();
}

bool DeviceRepo::SetRevoked(db::Conn& c, const std::string& id) {
  Stmt s(c, "UPDATE devices SET status = 'revoked' WHERE id = ?");
  s.Bind(1, id).Run();
  return c.Changes() > 0;
}

std::optional<DeviceKeyRow> DeviceRepo::Keys(db::Conn& c, const std::string& id) {
  Stmt s(c,
         "SELECT public_key, data_key_sealed, status FROM devices WHERE id = ? AND public_key "
         "IS NOT NULL");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return DeviceKeyRow{s.Text(0), s.Blob(1), s.Text(2)};
}

void DeviceRepo::Register(db::Conn& c, const std::string& id, const Registration& r) {
  Stmt s(c,
         "UPDATE devices SET status = 'active', public_key = ?1, data_key_sealed = ?2, "
         "software_version = ?3, model_version = ?4, registered_ms = ?5, last_seen_ms = "
         "?6, doors = CASE WHEN doors > ?7 THEN doors ELSE ?7 END, name = CASE WHEN ?8 = '' "
         "THEN name ELSE ?8 END WHERE id = ?9");
  s.Bind(1, r.public_key_pem)
      .Bind(2, std::span<const uint8_t>(r.data_key_sealed))
      .Bind(3, r.software_version)
      .Bind(4, r.model_version)
      .Bind(5, r.now_ms)
      .Bind(6, r.now_ms)
      .Bind(7, r.doors)
      .Bind(8, r.name)
      .Bind(9, id)
      .Run();
}

void DeviceRepo::Touch(db::Conn& c, const std::string& id, int64_t now_ms) {
  Stmt t(c, "UPDATE devices SET last_seen_ms = ? WHERE id = ?");
  t.Bind(1, now_ms).Bind(2, id).Run();
}

void DeviceRepo::Heartbeat(db::Conn& c, const std::string& id, int64_t now_ms,
                           const std::string& heartbeat,
                           const std::optional<std::string>& software_version) {
  Stmt s(c,
         "UPDATE devices SET last_seen_ms = ?, heartbeat = ?, software_version = "
         "COALESCE(?, software_version) WHERE id = ?");
  s.Bind(1, now_ms).Bind(2, heartbeat);
  if (software_version)
    s.Bind(3, *software_version);
  else
    s.BindNull(3);
  s.Bind(4, id).Run();
}

bool DeviceRepo::SiteExists(db::Conn& c, int64_t site_id) {
  Stmt s(c, "SELECT 1 FROM sites WHERE id = ?");
  s.Bind(1, site_id);
  return s.Step();
}

void DeviceRepo::InsertCode(db::Conn& c, const std::string& code_hash, const std::string& device_id,
                            int64_t expires_ms) {
  Stmt s(c, "INSERT INTO enrolment_codes(code_hash, device_id, expires_ms) VALUES(?,?,?)");
  s.Bind(1, code_hash).Bind(2, device_id).Bind(3, expires_ms).Run();
}

std::optional<EnrolmentCodeRow> DeviceRepo::Code(db::Conn& c, const std::string& code_hash) {
  Stmt s(c, "SELECT device_id, expires_ms, used_ms FROM enrolment_codes WHERE code_hash = ?");
  s.Bind(1, code_hash);
  if (!s.Step()) return std::nullopt;
  return EnrolmentCodeRow{s.Text(0), s.Int(1), s.OptInt(2)};
}

void DeviceRepo::UseCode(db::Conn& c, const std::string& code_hash, int64_t now_ms) {
  Stmt u(c, "UPDATE enrolment_codes SET used_ms = ? WHERE code_hash = ?");
  u.Bind(1, now_ms).Bind(2, code_hash).Run();
}

void DeviceRepo::UseCodesOf(db::Conn& c, const std::string& device_id, int64_t now_ms) {
  Stmt u(c, "UPDATE enrolment_codes SET used_ms = ? WHERE device_id = ? AND used_ms IS NULL");
  u.Bind(1, now_ms).Bind(2, device_id).Run();
}

int64_t DeviceRepo::InsertCommand(db::Conn& c, const std::string& device_id,
                                  const std::string& body, int64_t now_ms,
                                  const std::string& created_by) {
  Stmt s(c,
         "INSERT INTO commands(device_id, body, created_ms, created_by) VALUES(?,?,?,?) "
         "RETURNING id");
  s.Bind(1, device_id).Bind(2, body).Bind(3, now_ms).Bind(4, created_by);
  return InsertReturningId(s);
}

int64_t DeviceRepo::PendingCommands(db::Conn& c, const std::string& device_id) {
  Stmt q(c, "SELECT COUNT(*) FROM commands WHERE device_id = ? AND acked_ms IS NULL");
  q.Bind(1, device_id).Step();
  return q.Int(0);
}

int64_t DeviceRepo::CountCommands(db::Conn& c, const std::string& device_id) {
  Stmt q(c, "SELECT COUNT(*) FROM commands WHERE device_id = ?");
  q.Bind(1, device_id).Step();
  return q.Int(0);
}

std::vector<CommandRow> DeviceRepo::Commands(db::Conn& c, const std::string& device_id,
                                             int64_t limit, int64_t offset) {
  Stmt s(c,
         "SELECT id, body, created_ms, created_by, acked_ms FROM commands WHERE "
         "device_id = ? ORDER BY id DESC LIMIT ? OFFSET ?");
  s.Bind(1, device_id).Bind(2, limit).Bind(3, offset);
  std::vector<CommandRow> out;
  while (s.Step()) out.push_back({s.Int(0), s.Text(1), s.Int(2), s.Text(3), s.OptInt(4)});
  return out;
}

std::vector<CommandRow> DeviceRepo::Unacked(db::Conn& c, const std::string& device_id, int limit) {
  Stmt s(c,
         "SELECT id, body FROM commands WHERE device_id = ? AND acked_ms IS NULL "
         "ORDER BY id LIMIT ?");
  s.Bind(1, device_id).Bind(2, int64_t(limit));
  std::vector<CommandRow> out;
  while (s.Step()) {
    CommandRow r;
    r.id = s.Int(0);
    r.body = s.Text(1);
    out.push_back(std::move(r));
  }
  return out;
}

bool DeviceRepo::Ack(db::Conn& c, std::string_view id, const std::string& device_id,
                     int64_t now_ms) {
  const auto row = RowIdOf(id);
  if (!row) return false;
  Stmt u(c,
         "UPDATE commands SET acked_ms = ? WHERE id = ? AND device_id = ? AND "
         "acked_ms IS NULL");
  u.Bind(1, now_ms).Bind(2, *row).Bind(3, device_id).Run();
  return c.Changes() > 0;
}

}  // namespace anju::server::storage
