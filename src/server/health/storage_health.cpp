#include "server/health/storage_health.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "core/clock.h"

namespace anju::server {

namespace fs = std::filesystem;

StorageHealth::StorageHealth(fs::path data_dir, uint64_t reserve_bytes,
                             std::function<bool(const State&)> raise_alarm)
    : dir_(std::move(data_dir)),
      reserve_bytes_(reserve_bytes),
      raise_alarm_(std::move(raise_alarm)) {}

uint64_t StorageHealth::Available() const {
  struct statvfs st {};
  if (statvfs(dir_.c_str(), &st) != 0) return 0;
  return uint64_t(st.f_bavail) * uint64_t(st.f_frsize);
}

bool StorageHealth::WriteReserve() {
  if (reserve_bytes_ == 0) return true;
  const fs::path file = dir_ / kReserveName;
  const fs::path tmp = dir_ / (std::string(kReserveName) + ".tmp");
  std::error_code ec;
  if (fs::is_regular_file(file, ec) && fs::file_size(file, ec) == reserve_bytes_) return true;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  // Written, not only allocated: a file system without fallocate must hold real blocks.
  std::vector<char> zeros(64 << 10, 0);
  bool ok = true;
  for (uint64_t done = 0; ok && done < reserve_bytes_;) {
    const size_t n = size_t(std::min<uint64_t>(zeros.size(), reserve_bytes_ - done));
    const ssize_t w = ::write(fd, zeros.data(), n);
    ok = w > 0;
    if (ok) done += uint64_t(w);
  }
  ok = ok && ::fsync(fd) == 0;
  ::close(fd);
  if (ok) fs::rename(tmp, file, ec);
  if (!ok || ec) {
    fs::remove(tmp, ec);
    return false;
  }
  return true;
}

void StorageHealth::Prepare() {
  std::lock_guard lock(mu_);
  if (!WriteReserve())
    spdlog::warn("数据盘空间不足，未能预留 / no room for the {} byte reserve in {}", reserve_bytes_,
                 dir_.string());
}

void StorageHealth::ReportFull(const std::string& error) {
  std::lock_guard lock(mu_);
  if (state_.full) return;
  state_.full = true;
  full_ = true;
  state_.since_ms = NowMs();
  state_.error = error;
  state_.alarm_raised = false;
  std::error_code ec;
  fs::remove(dir_ / kReserveName, ec);
  state_.available_bytes = Available();
  last_check_ms_ = state_.since_ms;
  spdlog::error("数据盘已满，写入被拒 / data disk full, writes refused ({} bytes free): {}",
                state_.available_bytes, error);
  state_.alarm_raised = raise_alarm_ && raise_alarm_(state_);
}

StorageHealth::State StorageHealth::Check() {
  std::lock_guard lock(mu_);
  const int64_t now = NowMs();
  if (!state_.full || now - last_check_ms_ < 1000) {
    if (!state_.full) state_.available_bytes = Available();
    return state_;
  }
  last_check_ms_ = now;
  if (!state_.alarm_raised && raise_alarm_) state_.alarm_raised = raise_alarm_(state_);
  state_.available_bytes = Available();
  // Room for the reserve and as much again before writes are called healthy.
  if (state_.available_bytes >= 2 * reserve_bytes_ + (1u << 20) && WriteReserve()) {
    spdlog::info("数据盘空间已恢复 / data disk has room again ({} bytes free, full for {} s)",
                 state_.available_bytes, (now - state_.since_ms) / 1000);
    state_ = State{};
    full_ = false;
    state_.available_bytes = Available();
  }
  return state_;
}

}  // namespace anju::server
