// Commands from the platform (docs/device-protocol.md, "Commands"): open a door, show a
// notice on the status page, sync now. Executing a command twice is harmless: a notice
// is keyed by its id, an open just opens again.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "door/controller.h"

namespace anju::terminal {

// A notice pushed from the platform (R3.1.2.5), shown until `until_ms` (0 = until replaced
// by a newer notice with the same id, or forever).
struct Notice {
  std::string id;
  std::string text_zh;
  std::string text_en;
  int64_t until_ms = 0;
  int64_t received_ms = 0;
};

// Notices for the status page. Thread-safe.
class NoticeBoard {
 public:
  void Post(Notice notice);  // replaces a notice with the same id
  // Notices still valid at NOW_MS, newest first (expired ones are dropped).
  std::vector<Notice> Active(int64_t now_ms) const;

 private:
  mutable std::mutex mu_;
  std::vector<Notice> notices_;
};

class CommandRunner {
 public:
  CommandRunner(door::DoorController& door, NoticeBoard& notices,
                std::function<void()> request_sync = {});

  // Runs one command object ({"id", "type", …}). Never throws: an unknown type or bad
  // field is logged and counted; a door that cannot be reached is logged. Returns true
  // when the command was carried out.
  bool Execute(const nlohmann::json& command);

  uint64_t executed() const { return executed_; }
  uint64_t failed() const { return failed_; }

 private:
  door::DoorController& door_;
  NoticeBoard& notices_;
  std::function<void()> request_sync_;
  std::atomic<uint64_t> executed_{0}, failed_{0};
};

}  // namespace anju::terminal
