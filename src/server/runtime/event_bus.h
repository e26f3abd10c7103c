// The live event bus: access records, alarms and captures in the order they happen, for
// the console's stream (GET /api/v1/events/stream, server-sent events) and in-process
// listeners. A reader that reconnects with its last sequence number misses nothing the bus
// still holds. The embedded implementation is a ring in memory; a shared one lets any API
// server serve any console.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace anju::server::runtime {

struct BusMessage {
  uint64_t seq = 0;   // increasing
  std::string event;  // "access" | "alarm" | "capture"
  nlohmann::json data;
};

class EventBus {
 public:
  virtual ~EventBus() = default;
  // Appends and wakes every waiting reader; returns the message's sequence number.
  virtual uint64_t Publish(std::string event, nlohmann::json data) = 0;
  // Messages with seq > AFTER still held (oldest first, at most MAX). Waits up to TIMEOUT
  // for the first one; returns early (maybe empty) once closed.
  virtual std::vector<BusMessage> Read(uint64_t after, std::chrono::milliseconds timeout,
                                       size_t max = 500) = 0;
  virtual uint64_t last_seq() const = 0;
  virtual void Close() = 0;

  // "id: N\nevent: E\ndata: {json}\n\n" (one server-sent event).
  static std::string Sse(const BusMessage& m);
};

}  // namespace anju::server::runtime
