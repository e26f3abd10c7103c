// The GA/T 1400 endpoint (视图库, docs/viid.md): what a camera's requests are answered.
// HTTP Digest logins with nonces the server checks without state (their counts in the
// shared state), failed logins (auth_failures.h) raised as alarms, registrations, and the
// uploads: faces into the capture store and onto the recognition queue, live frames into
// the live preview. http/viid_handlers.cpp puts HTTP in front of it.
#pragma once

#include <string>
#include <variant>

#include "crypto/bytes.h"
#include "server/viid/alert_engine.h"
#include "server/viid/auth_failures.h"
#include "server/viid/camera_registry.h"
#include "server/viid/capture_store.h"
#include "server/viid/context.h"
#include "server/viid/live_preview.h"
#include "server/viid/viid_types.h"

namespace anju::server {

class Gat1400Endpoint {
 public:
  Gat1400Endpoint(ViidContext& ctx, CameraRegistry& cameras, CaptureStore& captures,
                  LivePreview& live, AlertEngine& alerts);

  // Authenticates a request (Digest, or a registered camera's User-Identify session from
  // the same address) and returns the camera id, or an answer to send instead
  // (kUnauthenticated with a challenge, or kRefused for a revoked camera).
  std::variant<std::string, ViidAnswer> Authenticate(
      const std::string& method, const std::string& target, const std::string& authorization,
      const std::string& user_identify, const std::string& remote_addr, bool require_digest);
  // DEVICE: the authenticated camera; BODY: the request's JSON.
  ViidAnswer Register(const std::string& device, const std::string& body,
                      const std::string& remote_addr);
  ViidAnswer Unregister(const std::string& device, const std::string& body);
  ViidAnswer Keepalive(const std::string& device, const std::string& body,
                       const std::string& remote_addr);
  // REMOTE_ADDR: the upload's source, the only host StoragePath images are fetched from.
  ViidAnswer Faces(const std::string& device, const std::string& body,
                   const std::string& remote_addr = "");
  ViidAnswer LiveFrame(const std::string& device, const std::string& body);

 private:
  std::string NewNonce(int64_t now_ms) const;
  bool NonceFresh(const std::string& nonce, int64_t now_ms, bool* valid) const;
  // A digest login that failed: logged, counted, and an alarm once it repeats.
  void OnAuthFailure(const std::string& remote_addr, const std::string& camera,
                     const std::string& why);

  ViidContext& ctx_;
  CameraRegistry& cameras_;
  CaptureStore& captures_;
  LivePreview& live_;
  AlertEngine& alerts_;
  crypto::Bytes nonce_key_;
  cameras::AuthFailureWatch auth_failures_;
};

}  // namespace anju::server
