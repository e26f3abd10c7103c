#include "server/viid/auth_failures.h"

namespace anju::server::cameras {

bool AuthFailureWatch::Count(Key& k, int64_t now_ms, int* failures) {
  k.times.push_back(now_ms);
  while (!k.times.empty() && now_ms - k.times.front() >= options_.window_ms) k.times.pop_front();
  while (k.times.size() > size_t(options_.threshold)) k.times.pop_front();
  *failures = int(k.times.size());
  if (*failures < options_.threshold) return false;
  if (k.alarmed_ms >= 0 && now_ms - k.alarmed_ms < options_.window_ms) return false;
  return true;
}

void AuthFailureWatch::Prune(int64_t now_ms) {
  for (auto it = keys_.begin(); it != keys_.end();) {
    const Key& k = it->second;
    const bool idle = k.times.empty() || now_ms - k.times.back() >= options_.window_ms;
    const bool alarm_over = k.alarmed_ms < 0 || now_ms - k.alarmed_ms >= options_.window_ms;
    it = idle && alarm_over ? keys_.erase(it) : std::next(it);
  }
  // Still full (a spray of addresses or names within one window): forget the one that failed
  // least recently rather than grow; the spray has tripped an alarm by then.
  while (keys_.size() >= options_.max_tracked) {
    auto oldest = keys_.begin();
    for (auto it = keys_.begin(); it != keys_.end(); ++it)
      if (it->second.times.empty() ||
          (!oldest->second.times.empty() && it->second.times.back() < oldest->second.times.back()))
        oldest = it;
    keys_.erase(oldest);
  }
}

std::optional<AuthFailureWatch::Trip> AuthFailureWatch::Record(const std::string& address,
                                                               const std::string& camera,
                                                               int64_t now_ms) {
  std::lock_guard lock(mu_);
  if (keys_.size() >= options_.max_tracked) Prune(now_ms);
  Trip trip;
  bool tripped = false;
  int n = 0;
  if (!address.empty()) {
    Key& k = keys_["a:" + address];
    if (Count(k, now_ms, &n)) trip.address = address, tripped = true;
    trip.address_failures = n;
  }
  if (!camera.empty()) {
    Key& k = keys_["c:" + camera];
    if (Count(k, now_ms, &n)) trip.camera = camera, tripped = true;
    trip.camera_failures = n;
  }
  if (!tripped) return std::nullopt;
  // One alarm covers both sides when they cross together; each side is quiet for a window.
  if (!trip.address.empty()) keys_["a:" + address].alarmed_ms = now_ms;
  if (!trip.camera.empty()) keys_["c:" + camera].alarmed_ms = now_ms;
  return trip;
}

}  // namespace anju::server::cameras
