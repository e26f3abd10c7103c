// The server's data disk when it fills (docs/reliability.md, "Disk full"): writes answer 507
// (ErrorCode::kStorageFull), an alarm is raised that the console lists, /healthz reports
// degraded, and everything returns to normal by itself once space is back.
//
// A small reserve file in the data directory is given up at the first refused write, so
// the alarm (and the audit of the refusal) still find room on a disk that is completely
// full; it is put back when space returns.
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>

namespace anju::server {

class StorageHealth {
 public:
  static constexpr const char* kReserveName = "storage.reserve";
  static constexpr uint64_t kDefaultReserveBytes = 4u << 20;

  struct State {
    bool full = false;
    int64_t since_ms = 0;          // when the first write was refused
    std::string error;             // that write's error
    uint64_t available_bytes = 0;  // free to the server on the data disk (statvfs)
    bool alarm_raised = false;     // the storage_full alarm is stored
  };

  // RAISE_ALARM stores the storage_full alarm (true when stored); it is called once per
  // episode, again on later checks while it fails.
  StorageHealth(std::filesystem::path data_dir, uint64_t reserve_bytes,
                std::function<bool(const State&)> raise_alarm);

  // At start: creates the reserve when it is missing and there is room (never fails).
  void Prepare();
  // A write was refused for lack of space (ERROR is its message): gives up the reserve and
  // raises the alarm the first time; later calls only re-check.
  void ReportFull(const std::string& error);
  // While full, at most once a second: space back (room for the reserve and as much again)
  // → the reserve is put back and the state is clear. Returns the state after the check.
  State Check();
  // Cheap (no lock, no system call): whether writes are being refused.
  bool full() const { return full_.load(std::memory_order_relaxed); }

 private:
  uint64_t Available() const;
  bool WriteReserve();

  const std::filesystem::path dir_;
  const uint64_t reserve_bytes_;
  const std::function<bool(const State&)> raise_alarm_;
  std::atomic<bool> full_{false};
  std::mutex mu_;
  State state_;
  int64_t last_check_ms_ = 0;
};

}  // namespace anju::server
