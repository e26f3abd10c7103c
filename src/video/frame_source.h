// FrameSource: the one camera input of the terminal and the capture program. Opened
// from a URI (source_uri.h); frames carry a steady-clock capture time and a sequence
// number. A source that drops or cannot be opened is retried with capped exponential
// back-off, and status() says what it is doing (for the log and the status page).
#pragma once

#include <opencv2/core.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "video/source_uri.h"

namespace anju::video {

using Clock = std::chrono::steady_clock;

struct Frame {
  cv::Mat image;  // 8-bit BGR, owned by this frame (never overwritten by the source)
  Clock::time_point captured;
  uint64_t seq = 0;  // 0, 1, 2 … per source, across reconnects and loops
};

enum class SourceState {
  kConnecting,    // not yet delivered a frame, no failure so far
  kConnected,     // delivering frames
  kReconnecting,  // the last open or read failed; retrying with back-off
  kEnded,         // a file or directory without loop reached its end
  kStopped,       // Stop() was called
};
const char* SourceStateName(SourceState state);

struct SourceStatus {
  std::string uri;
  SourceState state = SourceState::kConnecting;
  int attempt = 0;         // consecutive failed attempts (0 while connected)
  std::string last_error;  // most recent failure, kept after recovery
  uint64_t frames = 0;     // delivered so far
  uint64_t reconnects = 0;
  std::chrono::milliseconds retry_in{0};  // delay before the next attempt (reconnecting)
  Clock::time_point since;                // when the state last changed
};
// One line for logs: "rtsp://… reconnecting (attempt 3, next in 800 ms): <error>".
std::string Describe(const SourceStatus& status);

struct ReconnectPolicy {
  std::chrono::milliseconds initial{250};
  std::chrono::milliseconds max{10'000};
  double factor = 2.0;
  // Delay before attempt n+1 after n consecutive failures.
  std::chrono::milliseconds Delay(int failures) const;
};

struct SourceOptions {
  ReconnectPolicy reconnect;
  // Stream timeouts handed to FFmpeg (open and each read).
  std::chrono::milliseconds stream_timeout{5'000};
};

class FrameSource {
 public:
  // Error kInvalidArgument for a malformed URI. A source that cannot be opened yet is
  // NOT an error: it starts reconnecting (a camera may come up after the terminal).
  static std::unique_ptr<FrameSource> Open(const std::string& uri, SourceOptions options = {});

  virtual ~FrameSource();
  FrameSource(const FrameSource&) = delete;
  FrameSource& operator=(const FrameSource&) = delete;

  // The next frame, waiting (paced, reconnecting) at most `timeout`. nullopt on timeout,
  // at the end of a non-looping file or directory, or after Stop(); status() says which.
  // One reader thread at a time.
  std::optional<Frame> Read(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // Any thread: wakes a waiting Read; later Reads return nullopt at once.
  void Stop();
  SourceStatus status() const;  // any thread
  const SourceUri& uri() const { return uri_; }

 protected:
  enum class GrabResult { kFrame, kSkip, kEnd, kError };
  FrameSource(const std::string& text, SourceUri uri, SourceOptions options);
  // (Re)open the backend; false with *error set when it fails.
  virtual bool Connect(std::string* error) = 0;
  virtual void Disconnect() = 0;
  // kFrame with image set; kSkip: nothing this time, try again (a bad image);
  // kEnd: end of a finite source; kError with *error set: the source dropped.
  virtual GrabResult Grab(cv::Mat& image, std::string* error) = 0;

 private:
  void Fail(const std::string& error);
  void SetState(SourceState state);
  bool WaitUntil(Clock::time_point t);  // false when stopped

  SourceUri uri_;
  SourceOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  SourceStatus status_;
  // Reader-thread state.
  bool open_ = false;
  uint64_t frames_since_open_ = 0;
  Clock::time_point next_attempt_{};
  Clock::time_point next_due_{};
  std::optional<cv::Mat> pending_;
};

}  // namespace anju::video
