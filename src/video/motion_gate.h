// MotionGate: cheap frame differencing on a downscaled, blurred grey frame, so that an
// idle terminal can skip the face pipeline until something moves (R3.2.3.2).
#pragma once

#include <opencv2/core.hpp>

#include <chrono>

#include "video/frame_source.h"

namespace anju::video {

struct MotionOptions {
  int width = 160;             // frames are downscaled to this width (aspect kept)
  int pixel_threshold = 25;    // grey-level change that counts a pixel as changed
  float min_fraction = 0.01f;  // motion = at least this fraction of pixels changed
  // Stay awake this long after the last motion (someone standing still at the door).
  std::chrono::milliseconds cooldown{3'000};
};

struct MotionResult {
  bool motion = false;  // this frame differs from the previous one
  bool awake = false;   // motion now or within the cool-down
  float changed_fraction = 0.f;
};

class MotionGate {
 public:
  explicit MotionGate(MotionOptions options = {}) : options_(options) {}
  // The first frame (and a frame of another size) only sets the reference: no motion.
  MotionResult Update(const cv::Mat& image, Clock::time_point t);
  MotionResult Update(const Frame& frame) { return Update(frame.image, frame.captured); }
  void Reset() { previous_.release(); }
  const MotionOptions& options() const { return options_; }

 private:
  MotionOptions options_;
  cv::Mat previous_;
  cv::Size source_size_;
  bool ever_moved_ = false;
  Clock::time_point last_motion_{};
};

}  // namespace anju::video
