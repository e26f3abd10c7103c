#include "terminal/command_runner.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "protocol/device_auth.h"

namespace anju::terminal {

void NoticeBoard::Post(Notice notice) {
  std::lock_guard lock(mu_);
  const int64_t now = notice.received_ms;
  std::erase_if(notices_, [&](const Notice& n) {
    return n.id == notice.id || (n.until_ms != 0 && n.until_ms <= now);  // replaced or expired
  });
  notices_.push_back(std::move(notice));
}

std::vector<Notice> NoticeBoard::Active(int64_t now_ms) const {
  std::lock_guard lock(mu_);
  std::vector<Notice> out;
  for (auto it = notices_.rbegin(); it != notices_.rend(); ++it)
    if (it->until_ms == 0 || it->until_ms > now_ms) out.push_back(*it);
  return out;
}

CommandRunner::CommandRunner(door::DoorController& door, NoticeBoard& notices,
                             std::function<void()> request_sync)
    : door_(door), notices_(notices), request_sync_(std::move(request_sync)) {}

bool CommandRunner::Execute(const nlohmann::json& command) {
  std::string id = "?", type = "?";
  try {
    id = command.at("id").get<std::string>();
    type = command.at("type").get<std::string>();
    if (type == "open_door") {
      const int door = command.value("door", 0);
      const int64_t ms = command.value("duration_ms", int64_t{5000});
      spdlog::info("远程开门 / remote open: command {} door {} for {} ms", id, door, ms);
      door_.Open(door, std::chrono::milliseconds(ms));
    } else if (type == "notice") {
      Notice n;
      n.id = id;
      n.text_zh = command.value("text_zh", "");
      n.text_en = command.value("text_en", "");
      const auto until = command.find("until_ms");
      n.until_ms =
          (until != command.end() && until->is_number_integer()) ? until->get<int64_t>() : 0;
      n.received_ms = protocol::NowMs();
      spdlog::info("平台通知 / notice {}: {}", id, n.text_zh);
      notices_.Post(std::move(n));
    } else if (type == "sync") {
      if (request_sync_) request_sync_();
    } else {
      spdlog::warn("未知命令 / unknown command type '{}' (id {}): acknowledged, not run", type, id);
      ++failed_;
      return false;
    }
    ++executed_;
    return true;
  } catch (const std::exception& e) {
    spdlog::error("命令失败 / command {} ({}) failed: {}", id, type, e.what());
    ++failed_;
    return false;
  }
}

}  // namespace anju::terminal
