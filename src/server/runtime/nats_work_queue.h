// WorkQueue on a JetStream work-queue stream (docs/distributed.md, "Work queue"): every
// process that builds one with the same name shares one durable pull consumer, so each
// item goes to one worker at a time; an item not acked within ack_wait (its worker died or
// hangs) is delivered again, up to max_deliver deliveries. Items are on disk in the
// server: a restart of nats-server loses none. Pushing an id that is already in the
// stream's duplicate window is one item (the id is the message id).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "server/runtime/nats_connection.h"
#include "server/runtime/work_queue.h"

namespace anju::server::runtime {

struct NatsWorkQueueOptions {
  // Stream "<PREFIX>_WORK_<NAME>", subject "<prefix>.work.<name>", consumer "workers".
  std::string name = "recognition";
  // Delivered again when not acked (nor marked in progress) for this long.
  std::chrono::milliseconds ack_wait{30'000};
  // Deliveries before the queue stops handing an item out (it then stays in the stream
  // until max_age; the capture sweeper pushes a capture still `queued` again).
  int max_deliver = 10;
  // A second push of an id within this window is dropped by the server.
  std::chrono::milliseconds dedup_window{120'000};
  std::chrono::milliseconds max_age{std::chrono::hours(24 * 7)};
  int64_t max_bytes = -1;  // -1: the server's limit; when full, Push fails (kStorageFull)
  // Items fetched per request: 1 hands each item to whichever worker asks first; more
  // saves round trips but holds items in this process (their ack wait runs meanwhile).
  int fetch_batch = 1;
  // Wait for the server to confirm each ack (retried across a reconnection), so that an
  // acked item is not delivered again; false sends acks without waiting.
  bool sync_ack = true;
};

class NatsWorkQueue final : public WorkQueue {
 public:
  // Creates (or joins) the stream and the consumer; Error(kUnavailable) if NATS is away.
  NatsWorkQueue(std::shared_ptr<NatsConnection> conn, NatsWorkQueueOptions options = {});
  // Items handed out and not acked are left to their ack wait, as if this process died;
  // items fetched but not handed out are released at once.
  ~NatsWorkQueue() override;

  // Error(kInvalidArgument) for an empty id; Error(kUnavailable) when the server cannot
  // take it within NatsOptions::retry_for; Error(kStorageFull) when the stream is full.
  void Push(WorkItem item) override;
  std::optional<WorkItem> Pop(std::chrono::milliseconds timeout) override;
  void Ack(const WorkItem& item) override;
  void Nak(const WorkItem& item, std::chrono::milliseconds delay) override;
  void InProgress(const WorkItem& item) override;
  // Items in the stream: waiting, being worked on, or past max_deliver (server-wide).
  size_t size() const override;
  void Close() override;

  const std::string& stream() const { return stream_; }

 private:
  void Setup();  // stream, consumer, pull subscription
  natsMsg* Take(uint64_t token);
  WorkItem ToItem(natsMsg* m);

  std::shared_ptr<NatsConnection> conn_;
  NatsWorkQueueOptions options_;
  std::string stream_, subject_, consumer_;
  std::timed_mutex fetch_mu_;  // one Fetch at a time on the subscription
  natsSubscription* sub_ = nullptr;
  int64_t next_setup_ms_ = 0;  // when a failed subscription may be set up again
  mutable std::mutex mu_;
  std::deque<natsMsg*> fetched_;         // fetched, not handed out yet
  std::map<uint64_t, natsMsg*> handed_;  // token → delivery being worked on
  uint64_t next_token_ = 0;
  bool closed_ = false;
};

}  // namespace anju::server::runtime
