// Door devices, their one-time enrolment codes and queued commands in archive.db
// (docs/device-protocol.md). Rows in, rows out; the rules live in devices/device_service.h.
// Every function runs on the caller's connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server {
class SiteScope;
}

namespace anju::server::storage {

struct DeviceRow {
  std::string id, name;
  int64_t doors = 1;
  std::string status, software_version, model_version;
  std::optional<int64_t> registered_ms, last_seen_ms;
  std::string heartbeat;  // JSON text
  int64_t gallery_version = 0;
  int64_t created_ms = 0;
  std::optional<int64_t> site_id;
  std::optional<std::string> site_name;
};

// What authenticates a registered device's requests.
struct DeviceKeyRow {
  std::string public_key_pem;
  std::vector<uint8_t> data_key_sealed;
  std::string status;
};

struct EnrolmentCodeRow {
  std::string device_id;
  int64_t expires_ms = 0;
  std::optional<int64_t> used_ms;
};

// What a device sends when it registers (its data key already sealed for the archive).
struct Registration {
  std::string public_key_pem;
  std::vector<uint8_t> data_key_sealed;
  std::string software_version, model_version, name;  // an empty name keeps the old one
  int64_t doors = 1;                                  // the device keeps the larger count
  int64_t now_ms = 0;
};

struct CommandRow {
  int64_t id = 0;
  std::string body;  // JSON text
  int64_t created_ms = 0;
  std::string created_by;
  std::optional<int64_t> acked_ms;
};

class DeviceRepo {
 public:
  // ---- devices ----
  static bool Exists(db::Conn& c, const std::string& id);
  static std::optional<std::string> Status(db::Conn& c, const std::string& id);
  // How many doors the device has; nullopt when there is no such device.
  static std::optional<int64_t> Doors(db::Conn& c, const std::string& id);
  static void Insert(db::Conn& c, const std::string& id, const std::string& name, int64_t doors,
                     int64_t created_ms, std::optional<int64_t> site_id);
  static std::optional<DeviceRow> Get(db::Conn& c, const std::string& id);
  // The devices in SCOPE, oldest first, and how many there are.
  static int64_t Count(db::Conn& c, const SiteScope& scope);
  // Registered devices that are not revoked, in every site (GET /healthz).
  static int64_t CountActive(db::Conn& c);
  static std::vector<DeviceRow> List(db::Conn& c, const SiteScope& scope, int64_t limit,
                                     int64_t offset);
  static void SetSite(db::Conn& c, const std::string& id, std::optional<int64_t> site_id);
  static void SetName(db::Conn& c, const std::string& id, const std::string& name);
  // True when the device exists (it is revoked now).
  static bool SetRevoked(db::Conn& c, const std::string& id);
  static std::optional<DeviceKeyRow> Keys(db::Conn& c, const std::string& id);
  static void Register(db::Conn& c, const std::string& id, const Registration& r);
  static void Touch(db::Conn& c, const std::string& id, int64_t now_ms);
  // Last seen, the heartbeat (JSON text) and the software version when given.
  static void Heartbeat(db::Conn& c, const std::string& id, int64_t now_ms,
                        const std::string& heartbeat,
                        const std::optional<std::string>& software_version);
  static bool SiteExists(db::Conn& c, int64_t site_id);

  // ---- enrolment codes ----
  static void InsertCode(db::Conn& c, const std::string& code_hash, const std::string& device_id,
                         int64_t expires_ms);
  static std::optional<EnrolmentCodeRow> Code(db::Conn& c, const std::string& code_hash);
  static void UseCode(db::Conn& c, const std::string& code_hash, int64_t now_ms);
  // Every unused code of the device is used up.
  static void UseCodesOf(db::Conn& c, const std::string& device_id, int64_t now_ms);

  // ---- commands ----
  static int64_t InsertCommand(db::Conn& c, const std::string& device_id, const std::string& body,
                               int64_t now_ms, const std::string& created_by);
  static int64_t PendingCommands(db::Conn& c, const std::string& device_id);
  static int64_t CountCommands(db::Conn& c, const std::string& device_id);
  // Newest first.
  static std::vector<CommandRow> Commands(db::Conn& c, const std::string& device_id, int64_t limit,
                                          int64_t offset);
  // Not yet acknowledged, oldest first, at most LIMIT.
  static std::vector<CommandRow> Unacked(db::Conn& c, const std::string& device_id, int limit);
  // True when command ID (its number as text) of DEVICE_ID was pending.
  static bool Ack(db::Conn& c, std::string_view id, const std::string& device_id, int64_t now_ms);
};

}  // namespace anju::server::storage
