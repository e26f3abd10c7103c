#include "server/viid_event_bus.h"

namespace anju::server {

uint64_t EventBus::Publish(std::string event, nlohmann::json data) {
  uint64_t seq;
  {
    std::lock_guard lock(mu_);
    seq = ++seq_;
    ring_.push_back(BusMessage{seq, std::move(event), std::move(data)});
    while (ring_.size() > capacity_) ring_.pop_front();
  }
  cv_.notify_all();
  return seq;
}

std::vector<BusMessage> EventBus::Read(uint64_t after, std::chrono::milliseconds timeout,
                                       size_t max) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || seq_ > after; });
  std::vector<BusMessage> out;
  for (const auto& m : ring_) {
    if (m.seq <= after) continue;
    out.push_back(m);
    if (out.size() >= max) break;
  }
  return out;
}

uint64_t EventBus::last_seq() const {
  std::lock_guard lock(mu_);
  return seq_;
}

void EventBus::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

std::string EventBus::Sse(const BusMessage& m) {
  // dump() escapes newlines, so the data is one line as SSE requires.
  return "id: " + std::to_string(m.seq) + "\nevent: " + m.event +
         "\ndata: " + m.data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n\n";
}

}  // namespace anju::server
