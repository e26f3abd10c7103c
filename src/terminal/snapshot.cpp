#include "terminal/snapshot.h"

#include <opencv2/imgcodecs.hpp>

#include <algorithm>

namespace anju::terminal {

std::vector<uint8_t> FrameSnapshot(const cv::Mat& frame, int quality) {
  std::vector<uint8_t> jpeg;
  if (frame.empty()) return jpeg;
  cv::imencode(".jpg", frame, jpeg, {cv::IMWRITE_JPEG_QUALITY, std::clamp(quality, 1, 100)});
  return jpeg;
}

std::vector<uint8_t> FaceSnapshot(const cv::Mat& frame, const cv::Rect2f& box, int quality) {
  if (frame.empty()) return {};
  const cv::Point2f c(box.x + box.width / 2, box.y + box.height / 2);
  const float side = std::max(box.width, box.height) * 1.6f;
  cv::Rect r(cvRound(c.x - side / 2), cvRound(c.y - side / 2), cvRound(side), cvRound(side));
  r &= cv::Rect(0, 0, frame.cols, frame.rows);
  if (r.area() <= 0) return FrameSnapshot(frame, quality);
  return FrameSnapshot(frame(r), quality);
}

}  // namespace anju::terminal
