// Live preview for the console: each camera thread hands a downscaled JPEG of its
// current frame to LivePreview every preview interval; one sender thread POSTs the latest
// frame of each camera to the server's /VIID/Anju/LiveFrame (raw JPEG body, the uploader's
// digest credentials and User-Identify). Live frames are disposable: never in the durable
// outbox, a newer frame replaces one not yet sent, and a failed send is dropped (with a
// short pause while the server is down so that cameras never wait on the network).
#pragma once

#include <opencv2/core.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capture/viid_uploader.h"

namespace anju::capture {

inline constexpr const char* kPathLiveFrame = "/VIID/Anju/LiveFrame";

struct PreviewOptions {
  int interval_ms = 0;  // 0 = off
  int width = 640;      // frames wider than this are downscaled (aspect kept)
  int jpeg_quality = 70;
};

// IMAGE (BGR or grey) downscaled to at most WIDTH pixels wide, as a JPEG.
std::vector<uint8_t> DownscaledJpeg(const cv::Mat& image, int width, int quality);

struct PreviewStats {
  uint64_t submitted = 0, sent = 0, replaced = 0, failed = 0;
};

class LivePreview {
 public:
  // Same server, DeviceID and credentials as the uploader (ViidOptions).
  explicit LivePreview(ViidOptions options);
  ~LivePreview();
  LivePreview(const LivePreview&) = delete;
  LivePreview& operator=(const LivePreview&) = delete;

  // Camera thread: the latest frame for the server; replaces one still waiting. Never blocks
  // on the network.
  void Submit(const std::string& camera, std::vector<uint8_t> jpeg);
  // Sends what is waiting now (tests); returns how many frames the server accepted.
  size_t SendPending();
  void Start();
  void Stop();
  PreviewStats stats() const;

 private:
  struct Http;
  void Loop();

  ViidOptions options_;
  std::unique_ptr<Http> http_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<uint8_t>> pending_;  // camera → latest JPEG
  bool stop_ = false;
  std::thread thread_;
  std::atomic<uint64_t> submitted_{0}, sent_{0}, replaced_{0}, failed_{0};
};

}  // namespace anju::capture
