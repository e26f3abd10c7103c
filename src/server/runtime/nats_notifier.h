// Notifier on core NATS subjects (docs/distributed.md, "Notifications"): topic "gallery"
// is subject "<prefix>.gallery", and every subscriber in every process connected to the
// server sees every message published after it subscribed. At most once, as the seam
// says: a message published while the server is away may be lost; the database is the
// record, a notification only says "look again".
#pragma once

#include <memory>
#include <string>

#include "server/runtime/nats_connection.h"
#include "server/runtime/notifier.h"

namespace anju::server::runtime {

class NatsNotifier final : public Notifier {
 public:
  explicit NatsNotifier(std::shared_ptr<NatsConnection> conn) : conn_(std::move(conn)) {}

  // TOPIC: letters, digits, '_', '-' and '.' (else Error(kInvalidArgument)). A message the
  // connection cannot send is logged, not thrown: notifications are best effort.
  void Publish(const std::string& topic, const nlohmann::json& message) override;
  // Effective at the server when it returns. HANDLER runs on the subscription's own thread;
  // a handler that throws is logged. Destroying the subscription waits for a running call.
  std::unique_ptr<Subscription> Subscribe(const std::string& topic, Handler handler) override;

 private:
  class Sub;
  std::string SubjectOf(const std::string& topic) const;
  std::shared_ptr<NatsConnection> conn_;
};

}  // namespace anju::server::runtime
