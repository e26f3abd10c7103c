#include "server/storage/viid_camera_repo.h"

#include <span>

namespace anju::server::storage {

using db::Stmt;

namespace {

constexpr const char* kCameraCols =
    "id, name, place, building_id, unit_id, linked_device, status, registered, last_seen_ms, "
    "created_ms";

ViidCameraRow ReadCamera(const Stmt& s) {
  ViidCameraRow d;
  d.id = s.Text(0);
  d.name = s.Text(1);
  d.place = s.Text(2);
  d.building_id = s.OptInt(3);
  d.unit_id = s.OptInt(4);
  d.linked_device = s.Text(5);
  d.status = s.Text(6);
  d.registered = s.Int(7) != 0;
  d.last_seen_ms = s.Int(8);
  d.created_ms = s.Int(9);
  return d;
}

}  // namespace

bool ViidCameraRepo::Exists(db::Conn& c, const std::string& id) {
  Stmt s(c, "SELECT 1 FROM viid_devices WHERE id = ?");
  s.Bind(1, id);
  return s.Step();
}

void ViidCameraRepo::Insert(db::Conn& c, const ViidCameraRow& d, const std::string& realm,
                            const std::vector<uint8_t>& ha1_sealed) {
  Stmt s(c,
         "INSERT INTO viid_devices(id, name, place, building_id, unit_id, linked_device, realm, "
         "ha1_sealed, created_ms) VALUES(?,?,?,?,?,?,?,?,?)");
  s.Bind(1, d.id).Bind(2, d.name).Bind(3, d.place).Bind(4, d.building_id).Bind(5, d.unit_id);
  s.Bind(6, d.linked_device).Bind(7, realm).Bind(8, std::span<const uint8_t>(ha1_sealed));
  s.Bind(9, d.created_ms);
  s.Run();
}

std::vector<ViidCameraRow> ViidCameraRepo::List(db::Conn& c) {
  Stmt s(c, std::string("SELECT ") + kCameraCols + " FROM viid_devices ORDER BY id");
  std::vector<ViidCameraRow> out;
  while (s.Step()) out.push_back(ReadCamera(s));
  return out;
}

std::optional<ViidCameraRow> ViidCameraRepo::Get(db::Conn& c, const std::string& id) {
  Stmt s(c, std::string("SELECT ") + kCameraCols + " FROM viid_devices WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return ReadCamera(s);
}

bool ViidCameraRepo::Revoke(db::Conn& c, const std::string& id) {
  Stmt s(c,
         "UPDATE viid_devices SET status = 'revoked', registered = 0 WHERE id = ? AND status = "
         "'active'");
  s.Bind(1, id);
  s.Run();
  return c.Changes() > 0;
}

std::optional<ViidCredentialRow> ViidCameraRepo::Credentials(db::Conn& c, const std::string& id) {
  Stmt s(c, "SELECT ha1_sealed, status FROM viid_devices WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return ViidCredentialRow{s.Blob(0), s.Text(1)};
}

void ViidCameraRepo::SetRegistered(db::Conn& c, const std::string& id, int64_t now_ms) {
  Stmt s(c, "UPDATE viid_devices SET registered = 1, last_seen_ms = ? WHERE id = ?");
  s.Bind(1, now_ms).Bind(2, id);
  s.Run();
}

void ViidCameraRepo::SetUnregistered(db::Conn& c, const std::string& id) {
  Stmt s(c, "UPDATE viid_devices SET registered = 0 WHERE id = ?");
  s.Bind(1, id);
  s.Run();
}

void ViidCameraRepo::UnregisterAll(db::Conn& c) {
  Stmt s(c, "UPDATE viid_devices SET registered = 0 WHERE registered != 0");
  s.Run();
}

void ViidCameraRepo::Touch(db::Conn& c, const std::string& id, int64_t now_ms) {
  Stmt s(c, "UPDATE viid_devices SET last_seen_ms = ? WHERE id = ?");
  s.Bind(1, now_ms).Bind(2, id);
  s.Run();
}

}  // namespace anju::server::storage
