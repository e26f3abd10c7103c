#include "video/motion_gate.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>

#include "core/error.h"

namespace anju::video {

MotionResult MotionGate::Update(const cv::Mat& image, Clock::time_point t) {
  if (image.empty() || image.depth() != CV_8U ||
      (image.channels() != 1 && image.channels() != 3 && image.channels() != 4)) {
    throw Error(ErrorCode::kInvalidArgument, "motion gate needs an 8-bit grey/BGR/BGRA frame");
  }
  cv::Mat grey;
  if (image.channels() == 3) {
    cv::cvtColor(image, grey, cv::COLOR_BGR2GRAY);
  } else if (image.channels() == 4) {
    cv::cvtColor(image, grey, cv::COLOR_BGRA2GRAY);
  } else {
    grey = image;
  }
  const int w = std::max(8, std::min(options_.width, image.cols));
  const int h = std::max(8, static_cast<int>(image.rows * static_cast<double>(w) / image.cols));
  cv::Mat small;
  cv::resize(grey, small, cv::Size(w, h), 0, 0, cv::INTER_AREA);
  cv::GaussianBlur(small, small, cv::Size(5, 5), 0);

  MotionResult r;
  if (!previous_.empty() && source_size_ == image.size()) {
    cv::Mat diff;
    cv::absdiff(small, previous_, diff);
    int changed = cv::countNonZero(diff > options_.pixel_threshold);
    r.changed_fraction = static_cast<float>(changed) / static_cast<float>(diff.total());
    r.motion = r.changed_fraction >= options_.min_fraction;
  }
  previous_ = small;
  source_size_ = image.size();
  if (r.motion) {
    ever_moved_ = true;
    last_motion_ = t;
  }
  r.awake = r.motion || (ever_moved_ && t - last_motion_ < options_.cooldown);
  return r;
}

}  // namespace anju::video
