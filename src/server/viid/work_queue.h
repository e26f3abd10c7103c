// The recognition work queue of the snapshot service: an interface, so that scale-out can
// replace the in-process one (docs/viid.md).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace anju::server {

struct RecognitionJob {
  std::string capture_id;
  int64_t enqueued_ms = 0;
  std::vector<uint8_t> face_jpeg;  // optional: the crop, saves reading it back
};

class WorkQueue {
 public:
  virtual ~WorkQueue() = default;
  virtual void Push(RecognitionJob job) = 0;
  // Next job, or nullopt after TIMEOUT or once closed and empty.
  virtual std::optional<RecognitionJob> Pop(std::chrono::milliseconds timeout) = 0;
  virtual size_t size() const = 0;
  virtual void Close() = 0;
};

class InProcessQueue : public WorkQueue {
 public:
  void Push(RecognitionJob job) override;
  std::optional<RecognitionJob> Pop(std::chrono::milliseconds timeout) override;
  size_t size() const override;
  void Close() override;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<RecognitionJob> jobs_;
  bool closed_ = false;
};

}  // namespace anju::server
