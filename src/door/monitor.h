// DoorMonitor turns raw input samples plus the grants the controller issued into
// DoorEvents: forced open (contact opened with no grant), held open too long, and the
// edges of tamper / fire / emergency / exit button. It does no I/O and takes the time
// as an argument, so it is deterministic and shared by every controller.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "door/event.h"

namespace anju::door {

struct MonitorOptions {
  // A door may stay open this long after it was opened before kHeldOpen fires.
  std::chrono::milliseconds held_open_limit{30000};
  // Grace after a grant (pulse) ends during which opening still counts as granted:
  // people pull the door just as the strike re-locks, and contacts bounce.
  std::chrono::milliseconds grant_grace{2000};
  // The exit button grants passage for this long (request-to-exit).
  std::chrono::milliseconds exit_grant{10000};
};

class DoorMonitor {
 public:
  using Clock = std::chrono::steady_clock;

  explicit DoorMonitor(int door = 0, std::string source = "", MonitorOptions options = {});

  // The controller released the door for `duration` (a pulse).
  void OnGrant(Clock::time_point now, std::chrono::milliseconds duration);
  // The door is held open (latched) until OnLock; no forced/held-open alarms meanwhile.
  void OnHoldOpen(Clock::time_point now);
  // The door was locked: any running grant ends now (plus grace).
  void OnLock(Clock::time_point now);

  // A new input sample; returns the events it causes (including Tick's).
  std::vector<DoorEvent> OnInputs(const InputState& inputs, Clock::time_point now);
  // Time-based events only (held open too long).
  std::vector<DoorEvent> Tick(Clock::time_point now);

  // Connection state of the underlying hardware / converter: edges become kFault /
  // kFaultCleared (once per edge, not once per failed call).
  std::optional<DoorEvent> OnFault(const std::string& detail);
  std::optional<DoorEvent> OnHealthy();

  const InputState& inputs() const { return inputs_; }
  bool granted(Clock::time_point now) const;
  bool faulted() const { return faulted_; }

 private:
  DoorEvent Make(DoorEventKind kind, std::string detail) const;

  int door_;
  std::string source_;
  MonitorOptions options_;
  InputState inputs_;
  bool have_inputs_ = false;
  bool latched_ = false;
  Clock::time_point grant_until_{};
  Clock::time_point open_since_{};
  bool held_reported_ = false;
  bool faulted_ = false;
};

}  // namespace anju::door
