// The server's live event bus: access records, alarms and captures, in the order
// they happen, for GET /api/v1/events/stream (SSE) and other in-process listeners. A ring
// of the latest messages with increasing sequence numbers, so a reader that reconnects with
// its last id (Last-Event-ID) misses nothing that is still in the ring. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace anju::server {

struct BusMessage {
  uint64_t seq = 0;   // 1, 2, 3, ... (per process)
  std::string event;  // "access" | "alarm" | "capture"
  nlohmann::json data;
};

class EventBus {
 public:
  explicit EventBus(size_t capacity = 2000) : capacity_(capacity) {}

  // Appends and wakes every waiting reader; returns the message's sequence number.
  uint64_t Publish(std::string event, nlohmann::json data);
  // Messages with seq > AFTER still in the ring (oldest first, at most MAX). Waits up to
  // TIMEOUT for the first one; returns early (maybe empty) when Close() is called.
  std::vector<BusMessage> Read(uint64_t after, std::chrono::milliseconds timeout, size_t max = 500);
  uint64_t last_seq() const;
  void Close();

  // "id: N\nevent: E\ndata: {json}\n\n" (one SSE message).
  static std::string Sse(const BusMessage& m);

 private:
  size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<BusMessage> ring_;
  uint64_t seq_ = 0;
  bool closed_ = false;
};

}  // namespace anju::server
