#include "video/frame_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "video/capture_source.h"
#include "video/directory_source.h"

namespace anju::video {

const char* SourceStateName(SourceState state) {
  switch (state) {
    case SourceState::kConnecting:
      return "connecting";
    case SourceState::kConnected:
      return "connected";
    case SourceState::kReconnecting:
      return "reconnecting";
    case SourceState::kEnded:
      return "ended";
    case SourceState::kStopped:
      return "stopped";
  }
  return "?";
}

std::string Describe(const SourceStatus& s) {
  std::string out = s.uri + " " + SourceStateName(s.state);
  if (s.state == SourceState::kReconnecting) {
    out += " (attempt " + std::to_string(s.attempt) + ", next in " +
           std::to_string(s.retry_in.count()) + " ms)";
  }
  out += ", " + std::to_string(s.frames) + " frames";
  if (!s.last_error.empty()) out += ", last error: " + s.last_error;
  return out;
}

std::chrono::milliseconds ReconnectPolicy::Delay(int failures) const {
  double ms = static_cast<double>(initial.count()) *
              std::pow(std::max(factor, 1.0), std::max(failures - 1, 0));
  ms = std::min(ms, static_cast<double>(max.count()));
  return std::chrono::milliseconds(static_cast<int64_t>(std::max(ms, 0.0)));
}

std::unique_ptr<FrameSource> FrameSource::Open(const std::string& text, SourceOptions options) {
  SourceUri uri = ParseSourceUri(text);
  if (uri.kind == SourceKind::kDirectory) {
    return std::make_unique<DirectorySource>(text, uri, options);
  }
  return std::make_unique<CaptureSource>(text, uri, options);
}

FrameSource::FrameSource(const std::string& text, SourceUri uri, SourceOptions options)
    : uri_(std::move(uri)), options_(options) {
  status_.uri = text;
  status_.since = Clock::now();
}

FrameSource::~FrameSource() = default;

void FrameSource::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

SourceStatus FrameSource::status() const {
  std::lock_guard lock(mu_);
  return status_;
}

void FrameSource::SetState(SourceState state) {
  std::lock_guard lock(mu_);
  if (status_.state != state) status_.since = Clock::now();
  status_.state = state;
}

bool FrameSource::WaitUntil(Clock::time_point t) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, t, [&] { return stop_; });
  return !stop_;
}

void FrameSource::Fail(const std::string& error) {
  SourceStatus copy;
  {
    std::lock_guard lock(mu_);
    status_.attempt++;
    status_.last_error = error;
    status_.retry_in = options_.reconnect.Delay(status_.attempt);
    if (status_.state != SourceState::kReconnecting) status_.since = Clock::now();
    status_.state = SourceState::kReconnecting;
    next_attempt_ = Clock::now() + status_.retry_in;
    copy = status_;
  }
  // Log the first failures and then only every 10th, so a dead camera does not flood.
  if (copy.attempt <= 3 || copy.attempt % 10 == 0) spdlog::warn("video: {}", Describe(copy));
}

std::optional<Frame> FrameSource::Read(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stop_) {
        status_.state = SourceState::kStopped;
        return std::nullopt;
      }
      if (status_.state == SourceState::kEnded) return std::nullopt;
    }
    auto now = Clock::now();
    if (!open_ && !pending_) {
      if (now < next_attempt_) {
        if (next_attempt_ > deadline) {
          WaitUntil(deadline);
          return std::nullopt;
        }
        if (!WaitUntil(next_attempt_)) continue;
      }
      std::string error;
      if (!Connect(&error)) {
        Fail(error.empty() ? "cannot open" : error);
        continue;
      }
      open_ = true;
      frames_since_open_ = 0;
    }

    if (!pending_) {
      if (now > deadline) return std::nullopt;
      cv::Mat image;
      std::string error;
      switch (Grab(image, &error)) {
        case GrabResult::kFrame:
          frames_since_open_++;
          pending_ = std::move(image);
          break;
        case GrabResult::kSkip:
          continue;
        case GrabResult::kEnd:
          Disconnect();
          open_ = false;
          if (!uri_.loop) {
            if (frames_since_open_ == 0) {
              std::lock_guard lock(mu_);
              status_.last_error = "no frames";  // opened but nothing decodable
            }
            SetState(SourceState::kEnded);
            spdlog::info("video: {} ended", status().uri);
            return std::nullopt;
          }
          if (frames_since_open_ == 0) Fail("no frames");
          continue;
        case GrabResult::kError:
          Disconnect();
          open_ = false;
          Fail(error.empty() ? "read failed" : error);
          continue;
      }
    }

    // Pace to the requested rate: frame i is due at start + i / fps. A live camera is
    // not made to wait (its buffer would fill with stale frames): frames arriving more
    // than half a period early are dropped instead.
    now = Clock::now();
    const bool live = uri_.kind == SourceKind::kDevice || uri_.kind == SourceKind::kStream;
    if (uri_.fps > 0 && live) {
      const auto half = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(0.5 / uri_.fps));
      if (now + half < next_due_) {
        pending_.reset();
        continue;
      }
    } else if (uri_.fps > 0) {
      if (next_due_ > deadline) {
        WaitUntil(deadline);
        return std::nullopt;
      }
      if (next_due_ > now && !WaitUntil(next_due_)) continue;
    }
    Frame frame;
    frame.image = std::move(*pending_);
    pending_.reset();
    frame.captured = Clock::now();
    if (uri_.fps > 0) {
      auto period = std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(1.0 / uri_.fps));
      // Frame i is due one period after frame i-1 was due; more than a period behind
      // (reconnect, slow decode) restarts the schedule from now.
      auto scheduled = next_due_;
      if (scheduled + period < frame.captured) scheduled = frame.captured;
      next_due_ = scheduled + period;
    }
    SourceStatus connected;
    {
      std::lock_guard lock(mu_);
      frame.seq = status_.frames++;
      if (status_.state != SourceState::kConnected) {
        if (status_.state == SourceState::kReconnecting) status_.reconnects++;
        status_.state = SourceState::kConnected;
        status_.since = frame.captured;
        status_.attempt = 0;
        status_.retry_in = {};
        connected = status_;
      }
    }
    if (!connected.uri.empty()) spdlog::info("video: {}", Describe(connected));
    return frame;
  }
}

}  // namespace anju::video
