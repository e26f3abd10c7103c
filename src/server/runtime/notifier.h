// Fan-out notifications between the parts of the server, and between server processes when
// there are several: every subscriber of a topic sees every message published after it
// subscribed. Topics: "gallery" (an enrolment or deletion changed the feature index),
// "control" (a device revoked, caches to drop). Delivery is at most once and unordered
// across topics; state that must not be lost lives in the database, a notification only
// says "look again".
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace anju::server::runtime {

class Notifier {
 public:
  using Handler = std::function<void(const nlohmann::json& message)>;
  // Ends the subscription when destroyed.
  class Subscription {
   public:
    virtual ~Subscription() = default;
  };

  virtual ~Notifier() = default;
  virtual void Publish(const std::string& topic, const nlohmann::json& message) = 0;
  // HANDLER runs on a thread of the notifier's; it must not throw and should be quick.
  virtual std::unique_ptr<Subscription> Subscribe(const std::string& topic, Handler handler) = 0;
};

}  // namespace anju::server::runtime
