// Live preview (docs/viid.md): each camera's latest JPEG frame, never written to disk
// (privacy), and the count of open MJPEG streams. Embedded, the frames live in this
// process's memory; when several servers share the runtime (ViidDeps::distributed) they
// live in the shared state under "viid.live.<camera>" (on NATS a key-value bucket held in
// the NATS server's memory), expiring with live_max_age_ms, so that a console on any
// server sees a camera that sends to another.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "server/viid/context.h"
#include "server/viid/viid_types.h"

namespace anju::server {

class LivePreview {
 public:
  explicit LivePreview(ViidContext& ctx) : ctx_(ctx) {}
  ~LivePreview();

  // Keeps BODY (a JPEG) as DEVICE's latest frame; answers a ResponseStatusObject.
  ViidAnswer Put(const std::string& device, const std::string& body);
  // The latest frame newer than AFTER_SEQ and not older than live_max_age_ms, waiting up to
  // WAIT for one; nullopt otherwise (or when stopping).
  std::optional<LiveFrame> Latest(const std::string& device, uint64_t after_seq = 0,
                                  std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  // The latest frame newer than AFTER_SEQ, never waiting: for the MJPEG stream, which the
  // HTTP front's I/O thread pulls. Distributed, it answers from this process's last read
  // of the shared state and has a background reader read again when that read is older
  // than 50 ms, so a NATS server that is away delays the frames, never the I/O thread.
  std::optional<LiveFrame> Pull(const std::string& device, uint64_t after_seq);
  // Counts an MJPEG stream in; false when max_live_streams are open. LeaveStream ends it.
  bool EnterStream();
  void LeaveStream();
  // Wakes every waiting reader (the service is stopping).
  void WakeAll() { cv_.notify_all(); }

 private:
  // The shared state's copy of DEVICE's frame (read again at most every 50 ms); nullopt
  // when none.
  std::optional<LiveFrame> SharedFrame(const std::string& device);
  // Reads DEVICE's frame from the shared state into shared_ (blocks while NATS is away).
  std::optional<LiveFrame> ReadShared(const std::string& device);
  // Fresh (not older than live_max_age_ms) and newer than AFTER_SEQ.
  bool Wanted(const std::optional<LiveFrame>& f, uint64_t after_seq) const;
  void RunReader();

  ViidContext& ctx_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, LiveFrame> frames_;
  struct SharedRead {
    std::chrono::steady_clock::time_point read;
    std::optional<LiveFrame> frame;
  };
  std::map<std::string, SharedRead> shared_;  // distributed: the last read of each camera
  // Distributed: cameras whose frame Pull asked the reader thread to read again.
  std::set<std::string> to_read_;
  std::condition_variable reader_cv_;
  std::thread reader_;
  bool stop_reader_ = false;
  uint64_t seq_ = 0;
  std::atomic<int> streams_{0};
};

}  // namespace anju::server
