#include "server/runtime/nats_notifier.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <thread>

#include "core/error.h"

namespace anju::server::runtime {

namespace {

// What the library's callback reaches. The callback holds MU while the handler runs; the
// subscription clears HANDLER under MU, so once it is destroyed the handler is never
// called again. The library frees this with its last callback (on completion).
struct SubState {
  std::recursive_mutex mu;  // recursive: a handler may end its own subscription
  Notifier::Handler handler;
  std::string topic;
};

}  // namespace

class NatsNotifier::Sub final : public Notifier::Subscription {
 public:
  Sub(std::shared_ptr<SubState> state, natsSubscription* sub)
      : state_(std::move(state)), sub_(sub) {}
  ~Sub() override {
    {
      std::lock_guard lock(state_->mu);
      state_->handler = nullptr;
    }
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_Destroy(sub_);
  }

 private:
  std::shared_ptr<SubState> state_;
  natsSubscription* sub_;
};

std::string NatsNotifier::SubjectOf(const std::string& topic) const {
  const bool ok =
      !topic.empty() && topic.front() != '.' && topic.back() != '.' &&
      topic.find("..") == std::string::npos && std::all_of(topic.begin(), topic.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
      });
  if (!ok) throw Error(ErrorCode::kInvalidArgument, "notifier topic is not a subject: " + topic);
  return conn_->Subject(topic);
}

void NatsNotifier::Publish(const std::string& topic, const nlohmann::json& message) {
  const std::string subject = SubjectOf(topic);
  const std::string body = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const natsStatus s =
      natsConnection_Publish(conn_->nc(), subject.c_str(), body.data(), int(body.size()));
  if (s != NATS_OK)
    spdlog::warn("NATS: notification on {} not sent: {}", subject, natsStatus_GetText(s));
}

std::unique_ptr<Notifier::Subscription> NatsNotifier::Subscribe(const std::string& topic,
                                                                Handler handler) {
  const std::string subject = SubjectOf(topic);
  auto state = std::make_shared<SubState>();
  state->handler = std::move(handler);
  state->topic = topic;
  auto* ref = new std::shared_ptr<SubState>(state);
  natsSubscription* sub = nullptr;
  natsStatus s = natsConnection_Subscribe(
      &sub, conn_->nc(), subject.c_str(),
      [](natsConnection*, natsSubscription*, natsMsg* m, void* p) {
        auto& st = **static_cast<std::shared_ptr<SubState>*>(p);
        const std::string_view body(natsMsg_GetData(m), size_t(natsMsg_GetDataLength(m)));
        auto message = nlohmann::json::parse(body, nullptr, false);
        natsMsg_Destroy(m);
        if (message.is_discarded()) {
          spdlog::warn("NATS: a notification on {} is not JSON; dropped", st.topic);
          return;
        }
        std::lock_guard lock(st.mu);
        if (!st.handler) return;
        try {
          st.handler(message);
        } catch (const std::exception& e) {
          spdlog::error("NATS: handler of {} threw: {}", st.topic, e.what());
        }
      },
      ref);
  if (s != NATS_OK) {
    delete ref;
    ThrowNats("subscribe to " + subject, s);
  }
  natsSubscription_SetOnCompleteCB(
      sub, [](void* p) { delete static_cast<std::shared_ptr<SubState>*>(p); }, ref);
  // Effective at the server before returning: what is published after this reaches it.
  s = natsConnection_FlushTimeout(conn_->nc(), conn_->options().request_timeout.count());
  if (s != NATS_OK && s != NATS_TIMEOUT && s != NATS_CONNECTION_DISCONNECTED) {
    Sub cleanup(state, sub);
    ThrowNats("subscribe to " + subject, s);
  }
  return std::make_unique<Sub>(std::move(state), sub);
}

}  // namespace anju::server::runtime
