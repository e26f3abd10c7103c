#include "server/viid/live_preview.h"

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "protocol/viid.h"
#include "server/viid/common.h"

namespace anju::server {

namespace viid = protocol::viid;
using Outcome = ViidAnswer::Outcome;
using cameras::NowMs;
using cameras::StatusAnswer;

namespace {

const std::string kFramePrefix = "viid.live.";
// What a shared-state value may hold (the JetStream bucket's limit, runtime/nats_kv.h),
// less the frame's header.
constexpr size_t kMaxSharedFrameBytes = 512 * 1024 - 64;
constexpr auto kSharedReadEvery = std::chrono::milliseconds(50);

}  // namespace

LivePreview::~LivePreview() {
  {
    std::lock_guard lock(mu_);
    stop_reader_ = true;
  }
  reader_cv_.notify_all();
  if (reader_.joinable()) reader_.join();
}

std::optional<LiveFrame> LivePreview::SharedFrame(const std::string& device) {
  // An MJPEG stream asks every few tens of milliseconds: one read of the shared state per
  // camera per kSharedReadEvery is enough.
  const auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard lock(mu_);
    if (auto it = shared_.find(device);
        it != shared_.end() && now - it->second.read < kSharedReadEvery)
      return it->second.frame;
  }
  return ReadShared(device);
}

std::optional<LiveFrame> LivePreview::ReadShared(const std::string& device) {
  const auto now = std::chrono::steady_clock::now();
  std::optional<LiveFrame> f;
  if (const auto v = ctx_.live_state().Get(kFramePrefix + device)) {
    // "<time_ms>|<seq>|<jpeg>"
    const size_t a = v->find('|');
    const size_t b = a == std::string::npos ? a : v->find('|', a + 1);
    if (b != std::string::npos) {
      try {
        LiveFrame x;
        x.time_ms = std::stoll(v->substr(0, a));
        x.seq = std::stoull(v->substr(a + 1, b - a - 1));
        x.jpeg = std::make_shared<const std::string>(v->substr(b + 1));
        f = std::move(x);
      } catch (const std::exception&) {
      }
    }
  }
  std::lock_guard lock(mu_);
  shared_[device] = {now, f};
  return f;
}

bool LivePreview::Wanted(const std::optional<LiveFrame>& f, uint64_t after_seq) const {
  return f && f->seq > after_seq && f->time_ms >= NowMs() - ctx_.options().live_max_age_ms;
}

void LivePreview::RunReader() {
  std::unique_lock lock(mu_);
  for (;;) {
    reader_cv_.wait(lock, [&] { return stop_reader_ || !to_read_.empty(); });
    if (stop_reader_) return;
    const std::string device = *to_read_.begin();
    lock.unlock();
    try {
      ReadShared(device);
    } catch (const Error& e) {
      // NATS away: keep the last frame (it ages out), look again after kSharedReadEvery.
      spdlog::warn("viid: live frame of {} not read: {}", device, e.what());
      std::lock_guard relock(mu_);
      shared_[device].read = std::chrono::steady_clock::now();
    }
    lock.lock();
    to_read_.erase(device);
  }
}

std::optional<LiveFrame> LivePreview::Pull(const std::string& device, uint64_t after_seq) {
  if (!ctx_.deps().distributed) return Latest(device, after_seq);
  if (ctx_.Stopping()) return std::nullopt;
  std::optional<LiveFrame> f;
  {
    std::lock_guard lock(mu_);
    const auto it = shared_.find(device);
    if (it != shared_.end()) f = it->second.frame;
    const bool stale = it == shared_.end() ||
                       std::chrono::steady_clock::now() - it->second.read >= kSharedReadEvery;
    if (stale && !stop_reader_ && to_read_.insert(device).second) {
      if (!reader_.joinable()) reader_ = std::thread([this] { RunReader(); });
      reader_cv_.notify_one();
    }
  }
  if (!Wanted(f, after_seq)) return std::nullopt;
  return f;
}

ViidAnswer LivePreview::Put(const std::string& device, const std::string& body) {
  if (body.size() < 4 || static_cast<uint8_t>(body[0]) != 0xFF ||
      static_cast<uint8_t>(body[1]) != 0xD8 || static_cast<uint8_t>(body[2]) != 0xFF)
    return StatusAnswer(Outcome::kMalformed, viid::kPathLiveFrame, viid::kInvalidJsonContent,
                        "不是 JPEG / body is not a JPEG", device);
  if (body.size() > viid::kMaxImageBytes)
    return StatusAnswer(Outcome::kTooLarge, viid::kPathLiveFrame, viid::kInvalidJsonContent,
                        "图像过大 / image too large", device);
  if (ctx_.deps().distributed) {
    if (body.size() > kMaxSharedFrameBytes)
      return StatusAnswer(Outcome::kTooLarge, viid::kPathLiveFrame, viid::kInvalidJsonContent,
                          "图像过大 / image too large", device);
    // Increasing per camera across servers (a camera sends to one server at a time, and
    // the servers' clocks are in step).
    const int64_t now = NowMs();
    uint64_t seq;
    {
      std::lock_guard lock(mu_);
      seq = uint64_t(now) * 1000 + (++seq_ % 1000);
    }
    ctx_.live_state().Put(kFramePrefix + device,
                          std::to_string(now) + "|" + std::to_string(seq) + "|" + body,
                          std::chrono::milliseconds(ctx_.options().live_max_age_ms));
    {
      std::lock_guard lock(mu_);
      shared_.erase(device);
    }
    cv_.notify_all();
    return StatusAnswer(Outcome::kOk, viid::kPathLiveFrame, viid::kOk, "正常 / OK", device);
  }
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
  if (ctx_.deps().distributed) {
    // Another server may hold the camera's frames: look again every 100 ms while waiting.
    const auto until = std::chrono::steady_clock::now() + wait;
    for (;;) {
      if (ctx_.Stopping()) return std::nullopt;
      auto f = SharedFrame(device);
      if (Wanted(f, after_seq)) return f;
      const auto left = until - std::chrono::steady_clock::now();
      if (left <= std::chrono::milliseconds(0)) return std::nullopt;
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::min<std::chrono::steady_clock::duration>(
                             left, std::chrono::milliseconds(100)));
    }
  }
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
