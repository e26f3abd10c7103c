#include "terminal/link_state.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/error.h"
#include "protocol/api_error.h"
#include "protocol/device_auth.h"

namespace anju::terminal {

const char* LinkStateName(LinkState state) {
  switch (state) {
    case LinkState::kUnknown:
      return "unknown";
    case LinkState::kOnline:
      return "online";
    case LinkState::kOffline:
      return "offline";
    case LinkState::kRefused:
      return "refused";
  }
  return "unknown";
}

std::chrono::milliseconds Backoff::Fail() {
  ++failures;
  double ms = double(initial.count());
  for (int i = 1; i < failures && ms < double(max.count()); ++i) ms *= 2;
  return std::chrono::milliseconds(int64_t(std::min(ms, double(max.count()))));
}

void Link::Success() {
  std::lock_guard lock(mu_);
  last_success_ms_ = protocol::NowMs();
  if (state_ != LinkState::kOnline) {
    spdlog::info("{}: 服务器已连接 / server reachable", name_);
    state_ = LinkState::kOnline;
    since_ms_ = last_success_ms_;
  }
}

void Link::Failure(std::exception_ptr error) {
  LinkState state = LinkState::kRefused;
  std::string message;
  try {
    std::rethrow_exception(error);
  } catch (const protocol::ApiError& e) {
    message = "HTTP " + std::to_string(e.status()) + " " + e.code() + ": " + e.what();
    if (e.code() == "clock_skew")
      message +=
          " — 请校准本终端时间（NTP），记录保留待上传 / set this terminal's clock (NTP); "
          "records are kept until then";
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kUnavailable) state = LinkState::kOffline;
    message = std::string("[") + ErrorCodeName(e.code()) + "] " + e.what();
  } catch (const std::exception& e) {
    message = e.what();
  }
  Set(state, message);
}

void Link::Set(LinkState state, const std::string& error) {
  std::lock_guard lock(mu_);
  last_error_ = error;
  if (state == state_) return;  // logged once per change, not per attempt
  state_ = state;
  since_ms_ = protocol::NowMs();
  if (state == LinkState::kOffline)
    spdlog::warn("{}: 服务器不可达，离线运行 / server unreachable, working offline: {}", name_,
                 error);
  else
    spdlog::error("{}: 服务器拒绝或应答无效 / server refused or answer invalid: {}", name_, error);
}

LinkState Link::state() const {
  std::lock_guard lock(mu_);
  return state_;
}
std::string Link::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}
int64_t Link::last_success_ms() const {
  std::lock_guard lock(mu_);
  return last_success_ms_;
}
int64_t Link::since_ms() const {
  std::lock_guard lock(mu_);
  return since_ms_;
}

}  // namespace anju::terminal
