#include "door/controller.h"

#include <spdlog/spdlog.h>

#include "core/error.h"

namespace anju::door {

void DoorController::SetEventCallback(EventCallback callback) {
  std::lock_guard lock(callback_mutex_);
  callback_ = std::move(callback);
}

std::vector<DoorEvent> DoorController::Deliver(std::vector<DoorEvent> events) {
  EventCallback cb;
  {
    std::lock_guard lock(callback_mutex_);
    cb = callback_;
  }
  for (const auto& e : events) {
    auto level = IsAlarm(e.kind) ? spdlog::level::warn : spdlog::level::info;
    spdlog::log(level, "door {} event {} ({}): {}", e.door, DoorEventKindName(e.kind), e.source,
                e.detail);
    if (cb) cb(e);
  }
  return events;
}

void DoorController::CheckDoor(int door) const {
  if (door < 0 || door >= door_count())
    throw Error(ErrorCode::kInvalidArgument, "门号无效 / no such door: " + std::to_string(door) +
                                                 " (controller " + name() + " has " +
                                                 std::to_string(door_count()) + ")");
}

EventPoller::EventPoller(DoorController& controller, std::chrono::milliseconds interval)
    : controller_(controller), interval_(interval) {
  thread_ = std::thread([this] {
    while (!stop_) {
      try {
        controller_.Poll();
      } catch (const std::exception& e) {
        spdlog::warn("door poll failed: {}", e.what());
      }
      auto until = std::chrono::steady_clock::now() + interval_;
      while (!stop_ && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
}

EventPoller::~EventPoller() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

}  // namespace anju::door
