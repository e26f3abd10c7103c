#include "vision/ir_check.h"

#include <algorithm>
#include <array>

#include "vision/engine.h"

namespace anju::vision {

cv::Rect2f MapBoxToIr(const cv::Rect2f& b, const std::array<float, 6>& m) {
  const std::array<cv::Point2f, 4> corners = {
      cv::Point2f(b.x, b.y), cv::Point2f(b.x + b.width, b.y), cv::Point2f(b.x, b.y + b.height),
      cv::Point2f(b.x + b.width, b.y + b.height)};
  float x1 = 1e9f, y1 = 1e9f, x2 = -1e9f, y2 = -1e9f;
  for (const auto& p : corners) {
    const float x = m[0] * p.x + m[1] * p.y + m[2];
    const float y = m[3] * p.x + m[4] * p.y + m[5];
    x1 = std::min(x1, x), y1 = std::min(y1, y), x2 = std::max(x2, x), y2 = std::max(y2, y);
  }
  return {x1, y1, x2 - x1, y2 - y1};
}

float IrFaceScore(FaceDetector& detector, const cv::Mat& ir_frame, const cv::Rect2f& rgb_box,
                  const IrCheckOptions& o) {
  const cv::Mat bgr = ToBgr(ir_frame);
  const cv::Rect2f target = MapBoxToIr(rgb_box, o.map);
  if (target.width < 2 || target.height < 2) return 0.f;
  // A 4:3 window around the mapped box: the detector resizes its input to 320×240, so the
  // window keeps the face undistorted and large.
  const float h = std::max(target.height, target.width) * o.search_scale, w = h * 4 / 3;
  const cv::Point2f c(target.x + target.width / 2, target.y + target.height / 2);
  const cv::Rect window =
      cv::Rect(cvRound(c.x - w / 2), cvRound(c.y - h / 2), cvRound(w), cvRound(h)) &
      cv::Rect(0, 0, bgr.cols, bgr.rows);
  if (window.width < 8 || window.height < 8) return 0.f;
  float best = 0.f;
  for (auto f : detector.DetectOnce(bgr(window), o.detector_threshold)) {
    f.box.x += static_cast<float>(window.x);
    f.box.y += static_cast<float>(window.y);
    if (IoU(f.box, target) >= o.min_iou) best = std::max(best, f.score);
  }
  return best;
}

}  // namespace anju::vision
