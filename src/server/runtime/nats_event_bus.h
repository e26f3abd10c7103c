// EventBus on a JetStream stream (docs/distributed.md, "Live events"): every server
// process publishes into one stream and reads it back, so the sequence numbers (the SSE
// ids) are the stream's and any process serves any console. Each process follows the
// stream with an ephemeral push consumer into a cache of the latest messages; a reader further
// behind than the cache is served from the stream itself.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "server/runtime/event_bus.h"
#include "server/runtime/nats_connection.h"

namespace anju::server::runtime {

struct NatsEventBusOptions {
  // Stream "<PREFIX>_<NAME>", subjects "<prefix>.<name>.<event>".
  std::string name = "events";
  // The stream keeps at most this many messages / bytes / this long (oldest dropped).
  int64_t max_msgs = 200'000;
  int64_t max_bytes = 256ll * 1024 * 1024;
  std::chrono::milliseconds max_age{std::chrono::hours(24)};
  size_t cache = 2000;  // latest messages kept in this process for readers
};

class NatsEventBus final : public EventBus {
 public:
  NatsEventBus(std::shared_ptr<NatsConnection> conn, NatsEventBusOptions options = {});
  ~NatsEventBus() override;

  // EVENT must be letters, digits, '_' or '-' (it is a subject token): else
  // Error(kInvalidArgument). Error(kUnavailable) when the server cannot take it within
  // NatsOptions::retry_for.
  uint64_t Publish(std::string event, nlohmann::json data) override;
  std::vector<BusMessage> Read(uint64_t after, std::chrono::milliseconds timeout,
                               size_t max = 500) override;
  uint64_t last_seq() const override;
  void Close() override;

  const std::string& stream() const { return stream_; }

 private:
  struct Tail;
  void Follow(uint64_t from);  // (re)starts the consumer at stream sequence FROM
  void OnMessage(Tail& tail, natsMsg* m);
  std::vector<BusMessage> FromStream(uint64_t after, uint64_t before, size_t max);
  std::optional<BusMessage> Decode(natsMsg* m, uint64_t seq) const;

  std::shared_ptr<NatsConnection> conn_;
  NatsEventBusOptions options_;
  std::string stream_, subject_prefix_;
  uint64_t reconnect_listener_ = 0;
  // Set on reconnection (the server may have restarted and lost the consumer, which lives
  // in memory) or on a gap in the deliveries: the next reader follows the stream again
  // from the cache's end.
  std::atomic<bool> stale_{false};
  std::shared_ptr<Tail> tail_;
  std::mutex follow_mu_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BusMessage> cache_;
  uint64_t last_seq_ = 0;
  uint64_t published_ = 0;  // the last sequence this process published
  bool closed_ = false;
};

}  // namespace anju::server::runtime
