// Snapshot cameras (GA/T 1400 devices) and their sealed digest credentials in captures.db
// (docs/viid.md). Rows in, rows out; the rules live in the snapshot service. Every function
// runs on the caller's connection.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server::storage {

struct ViidCameraRow {
  std::string id, name, place;
  std::optional<int64_t> building_id, unit_id;
  std::string linked_device;
  std::string status;
  bool registered = false;
  int64_t last_seen_ms = 0;
  int64_t created_ms = 0;
};

// What a digest login is checked against.
struct ViidCredentialRow {
  std::vector<uint8_t> ha1_sealed;
  std::string status;
};

class ViidCameraRepo {
 public:
  static bool Exists(db::Conn& c, const std::string& id);
  static void Insert(db::Conn& c, const ViidCameraRow& camera, const std::string& realm,
                     const std::vector<uint8_t>& ha1_sealed);
  // Ordered by id.
  static std::vector<ViidCameraRow> List(db::Conn& c);
  static std::optional<ViidCameraRow> Get(db::Conn& c, const std::string& id);
  // Revoked, not deleted; true when the camera was active.
  static bool Revoke(db::Conn& c, const std::string& id);
  static std::optional<ViidCredentialRow> Credentials(db::Conn& c, const std::string& id);
  // Registered now (and seen at NOW_MS).
  static void SetRegistered(db::Conn& c, const std::string& id, int64_t now_ms);
  static void SetUnregistered(db::Conn& c, const std::string& id);
  // Every camera unregistered (registrations do not outlive the server process).
  static void UnregisterAll(db::Conn& c);
  static void Touch(db::Conn& c, const std::string& id, int64_t now_ms);
};

}  // namespace anju::server::storage
