#include "door/logging_controller.h"

#include <spdlog/spdlog.h>

#include "core/error.h"

namespace anju::door {

using Clock = std::chrono::steady_clock;

LoggingDoorController::LoggingDoorController(int doors, MonitorOptions options) {
  if (doors < 1) throw Error(ErrorCode::kInvalidArgument, "door count must be >= 1");
  for (int i = 0; i < doors; ++i) doors_.push_back(Door{DoorMonitor(i, "log", options), {}});
}

void LoggingDoorController::Open(int door, std::chrono::milliseconds duration) {
  CheckDoor(door);
  if (duration.count() <= 0)
    throw Error(ErrorCode::kInvalidArgument, "open duration must be positive");
  std::lock_guard lock(mutex_);
  auto now = Clock::now();
  doors_[door].pulse_until = now + duration;
  doors_[door].monitor.OnGrant(now, duration);
  spdlog::info("[log door] 开门 / open door {} for {} ms", door, duration.count());
}

void LoggingDoorController::HoldOpen(int door) {
  CheckDoor(door);
  std::lock_guard lock(mutex_);
  doors_[door].latched = true;
  doors_[door].monitor.OnHoldOpen(Clock::now());
  spdlog::info("[log door] 常开 / hold door {} open", door);
}

void LoggingDoorController::Lock(int door) {
  CheckDoor(door);
  std::lock_guard lock(mutex_);
  auto now = Clock::now();
  doors_[door].latched = false;
  doors_[door].pulse_until = now;
  doors_[door].monitor.OnLock(now);
  spdlog::info("[log door] 关门 / lock door {}{}", door,
               doors_[door].inputs.fire_alarm
                   ? " (消防报警中仍保持释放 / fire alarm keeps it released)"
                   : "");
}

void LoggingDoorController::SetInputs(int door, const InputState& inputs) {
  CheckDoor(door);
  std::lock_guard lock(mutex_);
  doors_[door].inputs = inputs;
}

bool LoggingDoorController::released(int door) const {
  CheckDoor(door);
  std::lock_guard lock(mutex_);
  const Door& d = doors_[door];
  return d.latched || d.inputs.fire_alarm || Clock::now() < d.pulse_until;
}

std::vector<DoorEvent> LoggingDoorController::Poll() {
  std::vector<DoorEvent> events;
  {
    std::lock_guard lock(mutex_);
    auto now = Clock::now();
    for (auto& d : doors_)
      for (auto& e : d.monitor.OnInputs(d.inputs, now)) events.push_back(std::move(e));
  }
  return Deliver(std::move(events));
}

}  // namespace anju::door
