// Repeated failed digest logins of GA/T 1400 cameras: someone guessing a camera's password, or
// a camera configured with a wrong one. Counted per source address and per camera id (the
// digest username) in a sliding window; crossing the threshold trips one alarm (R4.2.2.1: risk
// discovery and warning), and no further one for the same address or camera until a window
// has passed since (no flood). docs/viid.md, "Failed logins".
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace anju::server::cameras {

struct AuthFailureOptions {
  int threshold = 5;                  // failures …
  int64_t window_ms = 5 * 60 * 1000;  // … within this long
  size_t max_tracked = 4096;          // addresses + camera ids kept (memory bound)
};

class AuthFailureWatch {
 public:
  explicit AuthFailureWatch(AuthFailureOptions options = {}) : options_(options) {}

  // What crossed the threshold with this failure. Either side may be empty when only the
  // other tripped.
  struct Trip {
    std::string address, camera;
    int address_failures = 0, camera_failures = 0;  // within the window, this one included
  };
  // Counts a failed login from ADDRESS as CAMERA (the digest username, "" when none could be
  // read) at NOW_MS; returns a Trip when this failure makes one of them reach the threshold
  // and no alarm was raised for it within the window.
  std::optional<Trip> Record(const std::string& address, const std::string& camera, int64_t now_ms);

  const AuthFailureOptions& options() const { return options_; }

 private:
  struct Key {
    std::deque<int64_t> times;  // the last `threshold` failures
    int64_t alarmed_ms = -1;    // last alarm, -1 = none
  };
  // Adds NOW to K; true when it reaches the threshold and no alarm is active.
  bool Count(Key& k, int64_t now_ms, int* failures);
  void Prune(int64_t now_ms);

  AuthFailureOptions options_;
  std::mutex mu_;
  std::map<std::string, Key> keys_;  // "a:<address>" / "c:<camera>"
};

}  // namespace anju::server::cameras
