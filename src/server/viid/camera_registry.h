// Snapshot cameras (docs/viid.md): adding, listing and revoking them, their sealed digest
// credentials, and their GA/T 1400 registrations (sessions in the shared state under
// "viid.session.<device>": the registering address, expiring session_ttl_ms after the last
// request).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "crypto/bytes.h"
#include "server/viid/context.h"
#include "server/viid/viid_types.h"

namespace anju::server {

class CameraRegistry {
 public:
  // Embedded, registrations are this process's sessions: a restart forgets them all (the
  // cameras are told to register again at their next keepalive).
  explicit CameraRegistry(ViidContext& ctx);

  // Error(kInvalidArgument) for a bad id or a password under 8 characters, kConflict when
  // the id exists.
  ViidDevice Add(ViidDevice device, const std::string& password);
  std::vector<ViidDevice> List();
  std::optional<ViidDevice> Get(const std::string& id);
  // Revoked, not deleted: its captures keep naming it. False for an unknown camera.
  bool Revoke(const std::string& id);

  // A camera's digest HA1 and status ("active" | "revoked"); nullopt when unknown or when
  // its sealed HA1 does not open.
  struct Credentials {
    std::string ha1, status;
  };
  std::optional<Credentials> CredentialsOf(const std::string& id);

  // ---- registrations ----
  // The address the camera registered from; nullopt when not registered (or lapsed).
  std::optional<std::string> SessionAddress(const std::string& id);
  void Registered(const std::string& id, const std::string& addr, int64_t now_ms);
  void Unregistered(const std::string& id);
  // Keeps the registration from ADDR alive another session_ttl_ms (any request from the
  // registered address does: GA/T 1400 registrations lapse only without requests).
  void Refresh(const std::string& id, const std::string& addr);
  // The camera was heard from (last seen, shown as online).
  void Touch(const std::string& id, int64_t now_ms);

 private:
  void EndSession(const std::string& id);

  ViidContext& ctx_;
};

}  // namespace anju::server
