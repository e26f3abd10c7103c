// Door devices (docs/device-protocol.md): creation with a one-time enrolment code, placing a
// device at a site, revocation, queued commands (open a door, a notice, a sync), and the
// device side: registration with the code, signed requests (SM2 signature, clock, nonce),
// the gallery, commands and heartbeats. Every change an administrator makes is audited in
// the same transaction (R4.2.3.1).
//
// Errors are anju::Error: kNotFound (an unknown device, or one outside the caller's sites),
// kInvalidArgument (no such site, a site needed, a notice without text, a key that is not
// SM2), kConflict (a revoked device, another model version), kPermissionDenied with reason
// "enrolment_code_invalid", kUnauthenticated with reason "clock_skew" or "replayed" (a
// device request; otherwise without a reason).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "crypto/envelope.h"
#include "crypto/sm2.h"
#include "db/db.h"
#include "protocol/device_auth.h"
#include "server/access/principal.h"
#include "server/devices/gallery_log.h"
#include "server/runtime/notifier.h"
#include "server/runtime/shared_state.h"

namespace anju::server {

// A device created by an administrator and the one-time code it registers with.
struct NewDevice {
  std::string device_id;
  std::string enrolment_code;
  int64_t expires_ms = 0;
};

// A registered device's keys, as its signed requests are checked against them.
struct DeviceKeys {
  crypto::Sm2Key public_key;
  crypto::DataKey data_key;
  bool active = false;
};

// What a device sends to register (POST /api/v1/device/register).
struct DeviceRegistration {
  std::string enrolment_code;
  std::string public_key_pem;
  std::string name;  // empty: the name the administrator gave
  std::string software_version, model_version;
  int64_t doors = 1;
};

struct DeviceDeps {
  db::Db* db = nullptr;
  GalleryLog* gallery = nullptr;
  crypto::DataKey data_key;  // seals the devices' data keys in the archive
  std::string server_public_key_pem;
  std::string model_version;  // the server's face model ("" = none loaded: not checked)
  int64_t enrolment_code_ttl_ms = 24 * 3600 * 1000;
  // The levels the terminals of a site use (docs/device-protocol.md, "thresholds"); null
  // JSON when the site has none of its own. May be empty (no levels sent).
  std::function<nlohmann::json(db::Conn&, const std::string& device_id)> terminal_levels;
  // Several server processes share the archive (docs/distributed.md): a revocation or a
  // re-registration on one drops the key every other one has cached ("control" on the
  // notifier), and a request's nonce is refused on every server once one accepted it
  // (SHARED_NONCES: in the shared state). Null = this process alone.
  runtime::Notifier* notifier = nullptr;
  runtime::SharedState* shared_nonces = nullptr;
};

class DeviceService {
 public:
  explicit DeviceService(DeviceDeps deps);
  ~DeviceService();

  // ---- administration ----
  // A pending device with a one-time enrolment code, audited as ACTOR. SITE must exist and
  // lie within SCOPE; a scoped account must name one (else the device would be invisible to
  // it).
  NewDevice Create(const std::string& name, int doors, const std::string& actor,
                   std::optional<int64_t> site = std::nullopt, const Scope& scope = {});
  // CHANGE: {"name"?, "site_id"? (null = none)}; returns the device.
  nlohmann::json Update(const std::string& id, const nlohmann::json& change,
                        const std::string& actor, const Scope& scope);
  // {"items", "total"}: the devices in SCOPE with their health, oldest first.
  nlohmann::json List(const Scope& scope, int64_t limit, int64_t offset);
  nlohmann::json Get(const std::string& id);
  // A new one-time enrolment code (re-registration replaces the device key).
  NewDevice IssueCode(const std::string& id, const std::string& actor);
  void Revoke(const std::string& id, const std::string& actor);
  // Queues COMMAND ({"type": "open_door" | "notice" | "sync", …}); returns it with its id.
  nlohmann::json QueueCommand(const std::string& id, nlohmann::json command,
                              const std::string& actor);
  // {"items", "total"}: the device's commands, newest first.
  nlohmann::json Commands(const std::string& id, int64_t limit, int64_t offset);

  // ---- the device side ----
  // The answer to a registration: device id, the data key encrypted to the device's public
  // key, the server's public key and time.
  nlohmann::json Register(const DeviceRegistration& r);
  // The device id of a signed request (docs/device-protocol.md, "Authentication").
  std::string Authenticate(const protocol::SignedHeaders& h, const std::string& method,
                           const std::string& target, const std::string& body);
  // The gallery changes since SINCE, with the site's levels.
  nlohmann::json Gallery(const std::string& device_id, int64_t since, int64_t limit);
  // {"commands": […]} not yet acknowledged (the device was seen).
  nlohmann::json PendingCommands(const std::string& device_id);
  // IDS: "c-17" …; returns how many were pending.
  int Acknowledge(const std::string& device_id, const std::vector<std::string>& ids);
  nlohmann::json Heartbeat(const std::string& device_id, const nlohmann::json& heartbeat);

  // The device's keys (cached); nullopt when it never registered.
  std::optional<DeviceKeys> Keys(const std::string& id);

 private:
  // Drops ID's cached key here and, through the notifier, in every other process.
  void Forget(const std::string& id);
  void ForgetLocally(const std::string& id);
  nlohmann::json DeviceJson(db::Conn& conn, const std::string& id);

  DeviceDeps deps_;
  protocol::NonceCache nonces_;
  std::mutex mu_;
  std::map<std::string, DeviceKeys> cache_;
  std::unique_ptr<runtime::Notifier::Subscription> control_;  // last: ends first
};

}  // namespace anju::server
