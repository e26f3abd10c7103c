#include "server/viid/work_queue.h"

namespace anju::server {

void InProcessQueue::Push(RecognitionJob job) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
}

std::optional<RecognitionJob> InProcessQueue::Pop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || !jobs_.empty(); });
  if (jobs_.empty()) return std::nullopt;
  RecognitionJob j = std::move(jobs_.front());
  jobs_.pop_front();
  return j;
}

size_t InProcessQueue::size() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

void InProcessQueue::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

}  // namespace anju::server
