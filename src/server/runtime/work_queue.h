// A durable-enough queue of work items with acknowledgement (snapshot recognition): a
// worker pops an item, acks it when done, naks it to have it delivered again, or says it
// is still in progress. The embedded implementation lives in memory (the capture row is
// the durable record; items still queued are pushed again at start); a shared
// implementation redelivers an item whose worker vanished (docs/architecture.md).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace anju::server::runtime {

struct WorkItem {
  std::string id;       // unique per item (a capture id): pushing an id twice is one item
  std::string payload;  // optional bytes that save a read (a face crop)
  int64_t enqueued_ms = 0;
  int deliveries = 1;   // 1 the first time an item is handed out
  uint64_t token = 0;   // the queue's handle of this delivery
};

class WorkQueue {
 public:
  virtual ~WorkQueue() = default;
  virtual void Push(WorkItem item) = 0;
  // The next item, or nullopt after TIMEOUT or once closed and drained.
  virtual std::optional<WorkItem> Pop(std::chrono::milliseconds timeout) = 0;
  // Done with it: it is not delivered again.
  virtual void Ack(const WorkItem& item) = 0;
  // Not done: deliver it again after DELAY.
  virtual void Nak(const WorkItem& item, std::chrono::milliseconds delay) = 0;
  // Still working on it (extends the time before it would be redelivered).
  virtual void InProgress(const WorkItem& item) = 0;
  // Items waiting or being worked on.
  virtual size_t size() const = 0;
  virtual void Close() = 0;
};

}  // namespace anju::server::runtime
