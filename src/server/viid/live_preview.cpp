#include "server/viid/live_preview.h"

#include "protocol/viid.h"
#include "server/viid/common.h"

namespace anju::server {

namespace viid = protocol::viid;
using Outcome = ViidAnswer::Outcome;
using cameras::NowMs;
using cameras::StatusAnswer;

ViidAnswer LivePreview::Put(const std::string& device, const std::string& body) {
  if (body.size() < 4 || static_cast<uint8_t>(body[0]) != 0xFF ||
      static_cast<uint8_t>(body[1]) != 0xD8 || static_cast<uint8_t>(body[2]) != 0xFF)
    return StatusAnswer(Outcome::kMalformed, viid::kPathLiveFrame, viid::kInvalidJsonContent,
                        "不是 JPEG / body is not a JPEG", device);
  if (body.size() > viid::kMaxImageBytes)
    return StatusAnswer(Outcome::kTooLarge, viid::kPathLiveFrame, viid::kInvalidJsonContent,
                        "图像过大 / image too large", device);
  {
    std::lock_guard lock(mu_);
    LiveFrame& f = frames_[device];
    f.jpeg = std::make_shared<const std::string>(body);
    f.time_ms = NowMs();
    f.seq = ++seq_;
  }
  cv_.notify_all();
  return StatusAnswer(Outcome::kOk, viid::kPathLiveFrame, viid::kOk, "正常 / OK", device);
}

std::optional<LiveFrame> LivePreview::Latest(const std::string& device, uint64_t after_seq,
                                             std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  auto fresh = [&]() -> const LiveFrame* {
    auto it = frames_.find(device);
    if (it == frames_.end() || it->second.seq <= after_seq ||
        it->second.time_ms < NowMs() - ctx_.options().live_max_age_ms)
      return nullptr;
    return &it->second;
  };
  if (wait.count() > 0)
    cv_.wait_for(lock, wait, [&] { return ctx_.Stopping() || fresh() != nullptr; });
  const LiveFrame* f = ctx_.Stopping() ? nullptr : fresh();
  if (!f) return std::nullopt;
  return *f;
}

bool LivePreview::EnterStream() {
  if (++streams_ > ctx_.options().max_live_streams) {
    --streams_;
    return false;
  }
  return true;
}

void LivePreview::LeaveStream() {
  --streams_;
}

}  // namespace anju::server
