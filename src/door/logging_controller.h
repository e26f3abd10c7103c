// LoggingDoorController: no hardware, every command goes to the log (spdlog) and the
// door state is kept in memory. For development terminals, demos and dry runs; inputs
// can be injected with SetInputs.
#pragma once

#include <chrono>
#include <mutex>
#include <vector>

#include "door/controller.h"
#include "door/monitor.h"

namespace anju::door {

class LoggingDoorController : public DoorController {
 public:
  explicit LoggingDoorController(int doors = 1, MonitorOptions options = {});

  std::string name() const override { return "log"; }
  int door_count() const override { return static_cast<int>(doors_.size()); }
  void Open(int door, std::chrono::milliseconds duration) override;
  void HoldOpen(int door) override;
  void Lock(int door) override;
  std::vector<DoorEvent> Poll() override;

  // Simulated inputs of `door`, picked up by the next Poll.
  void SetInputs(int door, const InputState& inputs);
  // Whether the door is released right now (pulse running, latched, or fire alarm).
  bool released(int door) const;

 private:
  struct Door {
    DoorMonitor monitor;
    InputState inputs;
    bool latched = false;
    std::chrono::steady_clock::time_point pulse_until{};
  };
  mutable std::mutex mutex_;
  std::vector<Door> doors_;
};

}  // namespace anju::door
