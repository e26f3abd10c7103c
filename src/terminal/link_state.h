// How a terminal's background clients (gallery sync, uploader) see the server: the state
// shown on the status page and logged once per change, and the capped exponential
// back-off they use while the server cannot be reached.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>

namespace anju::terminal {

enum class LinkState {
  kUnknown,  // nothing tried yet
  kOnline,   // the last request was answered and its signature verified
  kOffline,  // the server cannot be reached (connection refused, timeout, dropped)
  kRefused,  // the server answered with an error, or an answer that did not verify
};
const char* LinkStateName(LinkState state);  // "unknown", "online", "offline", "refused"

// Capped exponential back-off: initial, 2×, 4× … up to max.
struct Backoff {
  std::chrono::milliseconds initial{500};
  std::chrono::milliseconds max{30'000};
  int failures = 0;
  // The delay after one more failure.
  std::chrono::milliseconds Fail();
  void Reset() { failures = 0; }
};

// The state of one client's link, thread-safe; Update() logs only state changes.
class Link {
 public:
  explicit Link(std::string name) : name_(std::move(name)) {}
  void Success();
  // Classifies the exception in flight (anju::Error kUnavailable → offline, anything
  // else → refused) and records its message.
  void Failure(std::exception_ptr error);
  LinkState state() const;
  std::string last_error() const;
  int64_t last_success_ms() const;  // Unix ms, 0 = never
  int64_t since_ms() const;         // when the state last changed

 private:
  void Set(LinkState state, const std::string& error);
  std::string name_;
  mutable std::mutex mu_;
  LinkState state_ = LinkState::kUnknown;
  std::string last_error_;
  int64_t last_success_ms_ = 0;
  int64_t since_ms_ = 0;
};

}  // namespace anju::terminal
