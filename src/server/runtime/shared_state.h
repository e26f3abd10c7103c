// Small shared state with expiry that every server process must agree on: login failure
// counters and lockouts, the risk warning's view counters, device request nonces, GA/T
// 1400 digest nonces and camera sessions, live preview frames. The embedded implementation
// is a map in memory (a restart forgets it, as before); a shared one makes a lockout on one
// server hold on all.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace anju::server::runtime {

class SharedState {
 public:
  virtual ~SharedState() = default;
  // Adds DELTA to the counter KEY (created at 0) and returns the new value; a new counter
  // expires after TTL (an existing one keeps its expiry).
  virtual int64_t Add(const std::string& key, int64_t delta, std::chrono::milliseconds ttl) = 0;
  // Sets KEY to VALUE, expiring after TTL.
  virtual void Put(const std::string& key, std::string value, std::chrono::milliseconds ttl) = 0;
  // Sets KEY only when absent (or expired); false when it was there (replay checks).
  virtual bool PutIfAbsent(const std::string& key, std::string value,
                           std::chrono::milliseconds ttl) = 0;
  virtual std::optional<std::string> Get(const std::string& key) const = 0;
  virtual void Remove(const std::string& key) = 0;
};

}  // namespace anju::server::runtime
