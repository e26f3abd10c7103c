// Uploader: drains the durable outbox to the server (docs/device-protocol.md, "Uploading
// records"; R3.3.3.1). One background thread sends the oldest items in outbox
// order, at most max_items / max_bytes (base64 snapshots included) per request, and
// acknowledges (deletes) every id the server lists as stored, duplicate or rejected.
// Ids are the outbox's idempotent UUIDs, so a resend after a crash or a lost response
// is stored once by the server. While the server cannot be reached it backs off (capped
// exponential) and resumes by itself; Wake() shortens the wait when a record arrives.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "protocol/device_client.h"
#include "store/outbox.h"
#include "terminal/link_state.h"

namespace anju::terminal {

struct UploaderOptions {
  size_t max_items = 100;
  size_t max_bytes = size_t{4} << 20;          // request body estimate (base64 included)
  std::chrono::milliseconds idle_poll{1'000};  // outbox empty: look again after this
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{30'000};
  // Called on the upload thread when a request succeeds after the link was offline or
  // refused: the terminal wakes its sync client, so the gallery catches up at once
  // instead of after the sync's own back-off.
  std::function<void()> on_reconnect;
};

struct UploaderStats {
  uint64_t requests = 0;  // answered requests
  uint64_t acked = 0;     // items deleted from the outbox after an answer
  uint64_t stored = 0, duplicates = 0, rejected = 0;  // as the server listed them
  uint64_t failures = 0;                              // requests without a usable answer
  LinkState link = LinkState::kUnknown;
  std::string last_error;
  int64_t last_success_ms = 0;
  nlohmann::json ToJson() const;
};

class Uploader {
 public:
  Uploader(store::Outbox& outbox, protocol::DeviceClient& client, UploaderOptions options = {});
  ~Uploader();  // stops the thread
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  // One request with the oldest items; returns how many were acknowledged (0 when the
  // outbox is empty). Throws what DeviceClient throws, ApiError for a refused request,
  // Error(kCorrupt) for an answer not shaped as the protocol says.
  size_t UploadOnce();
  // UploadOnce until the outbox is empty; throws Error(kUnavailable) if a request is
  // answered but acknowledges nothing (it would loop forever). Returns items acked.
  size_t Drain();

  void Start();
  void Stop();
  void Wake();  // new items: send now instead of after idle_poll

  UploaderStats stats() const;
  const Link& link() const { return link_; }

 private:
  void Loop();
  nlohmann::json EventJson(const store::OutboxItem& item, bool with_snapshot) const;
  store::Outbox& outbox_;
  protocol::DeviceClient& client_;
  UploaderOptions options_;
  Link link_{"upload"};
  std::atomic<uint64_t> requests_{0}, acked_{0}, stored_{0}, duplicates_{0}, rejected_{0},
      failures_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool wake_ = false;
  std::thread thread_;
};

}  // namespace anju::terminal
