// DoorController: the one interface a terminal or server uses to open doors and to
// hear about their inputs, whatever hardware sits behind it (a Modbus TCP door signal
// converter, local GPIO lines, or nothing but a log).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "door/event.h"

namespace anju::door {

class DoorController {
 public:
  using EventCallback = std::function<void(const DoorEvent&)>;
  virtual ~DoorController() = default;

  virtual std::string name() const = 0;
  virtual int door_count() const = 0;

  // Release door `door` for `duration`, after which it locks by itself (the timing is
  // done by the hardware side where possible, so it ends even if this process dies).
  // Throws anju::Error: kInvalidArgument (bad door / duration), kUnavailable (the
  // hardware or converter cannot be reached; a kFault event is also produced).
  virtual void Open(int door, std::chrono::milliseconds duration) = 0;
  // Release until Lock (e.g. a scheduled open period).
  virtual void HoldOpen(int door) = 0;
  // Lock now. A fire alarm keeps doors released regardless (R3.2.3.1).
  virtual void Lock(int door) = 0;

  // Sample the inputs now and return the events since the last call; they are also
  // handed to the callback, if one is set. Transport problems become kFault events,
  // not exceptions.
  virtual std::vector<DoorEvent> Poll() = 0;

  void SetEventCallback(EventCallback callback);

 protected:
  // Passes `events` to the callback (if any) and returns them.
  std::vector<DoorEvent> Deliver(std::vector<DoorEvent> events);
  void CheckDoor(int door) const;

 private:
  std::mutex callback_mutex_;
  EventCallback callback_;
};

// Calls controller.Poll() every `interval` on its own thread until destroyed; events go
// to the controller's callback.
class EventPoller {
 public:
  EventPoller(DoorController& controller, std::chrono::milliseconds interval);
  ~EventPoller();
  EventPoller(const EventPoller&) = delete;
  EventPoller& operator=(const EventPoller&) = delete;

 private:
  DoorController& controller_;
  std::chrono::milliseconds interval_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace anju::door
