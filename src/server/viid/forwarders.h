// What leaves the snapshot side (docs/viid.md): the live tail of the event store (access
// records and alarms onto the live bus) and the two durable outboxes it feeds, the alarm
// webhook and forwarding to an upper platform (HTTP JSON, or GA/T 1400 with Digest as a
// registered, kept-alive lower platform), each sent in order and retried. The tail and both
// senders are singleton jobs (one leader).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"
#include "server/viid/context.h"
#include "server/viid/viid_types.h"

namespace anju::server {

class Forwarders {
 public:
  explicit Forwarders(ViidContext& ctx) : ctx_(ctx) {}

  // URL: http(s)://… or "" (off); Error(kInvalidArgument) otherwise.
  void SetWebhook(const std::string& url);
  WebhookStatus Webhook();
  // Error(kInvalidArgument) for a bad kind or URL. PASSWORD (gat1400) is kept sealed;
  // nullopt keeps the one stored.
  void SetForward(const ForwardTarget& target, const std::optional<std::string>& password);
  ForwardStatus Forward();

  // A recognised capture (CROP: its face) into the forward outbox when forwarding is on,
  // on CONN: the caller's transaction that finishes the capture, so that a capture
  // finished as `done` is queued for the platform exactly once (R3.3.2.4).
  void ForwardCapture(db::Conn& conn, const CaptureDetail& capture,
                      const std::vector<uint8_t>& crop);

  // The background loops, each run on a thread of its own until the context stops.
  void RunTail();
  void RunWebhookSender();
  void RunForwardSender();

 private:
  class Cascade;  // the GA/T 1400 cascade session with the upper platform (gat1400)

  void EnqueueForward(db::Conn& conn, const std::string& kind, const nlohmann::json& body);
  bool Record(const std::function<void(db::Conn&)>& write);

  ViidContext& ctx_;
};

}  // namespace anju::server
