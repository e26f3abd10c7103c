// Live preview (docs/viid.md): each camera's latest JPEG frame, in memory only (never
// written to disk), and the count of open MJPEG streams.
#include "server/viid/viid_service.h"

#include "server/viid/common.h"

namespace anju::server {

namespace viid = protocol::viid;
using Outcome = ViidService::ViidAnswer::Outcome;
using cameras::NowMs;
using cameras::StatusAnswer;

// ---- live preview ----------------------------------------------------------------------

ViidService::ViidAnswer ViidService::PutLiveFrame(const std::string& device,
                                                  const std::string& body) {
  if (body.size() < 4 || static_cast<uint8_t>(body[0]) != 0xFF ||
      static_cast<uint8_t>(body[1]) != 0xD8 || static_cast<uint8_t>(body[2]) != 0xFF)
    return StatusAnswer(Outcome::kMalformed, viid::kPathLiveFrame, viid::kInvalidJsonContent,
                        "不是 JPEG / body is not a JPEG", device);
  if (body.size() > viid::kMaxImageBytes)
    return StatusAnswer(Outcome::kTooLarge, viid::kPathLiveFrame, viid::kInvalidJsonContent,
                        "图像过大 / image too large", device);
  {
    std::lock_guard lock(live_mu_);
    LiveFrame& f = live_[device];
    f.jpeg = std::make_shared<const std::string>(body);
    f.time_ms = NowMs();
    f.seq = ++live_seq_;
  }
  live_cv_.notify_all();
  return StatusAnswer(Outcome::kOk, viid::kPathLiveFrame, viid::kOk, "正常 / OK", device);
}

std::optional<LiveFrame> ViidService::Live(const std::string& device, uint64_t after_seq,
                                           std::chrono::milliseconds wait) {
  std::unique_lock lock(live_mu_);
  auto fresh = [&]() -> const LiveFrame* {
    auto it = live_.find(device);
    if (it == live_.end() || it->second.seq <= after_seq ||
        it->second.time_ms < NowMs() - options_.live_max_age_ms)
      return nullptr;
    return &it->second;
  };
  if (wait.count() > 0)
    live_cv_.wait_for(lock, wait, [&] { return Stopping() || fresh() != nullptr; });
  const LiveFrame* f = Stopping() ? nullptr : fresh();
  if (!f) return std::nullopt;
  return *f;
}

bool ViidService::EnterLiveStream() {
  if (++live_streams_ > options_.max_live_streams) {
    --live_streams_;
    return false;
  }
  return true;
}

void ViidService::LeaveLiveStream() {
  --live_streams_;
}

}  // namespace anju::server
