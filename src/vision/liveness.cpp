#include "vision/liveness.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>

#include "vision/net.h"

namespace anju::vision {

LivenessChecker::LivenessChecker(const ModelSet& models, LivenessOptions options)
    : net_(LoadNet(models.file("liveness"))), options_(options) {}

float LivenessChecker::Score(const cv::Mat& bgr, const cv::Rect2f& box) {
  // As in training (MiniFASNet-style): enlarge the box, but never beyond the image;
  // a box that would cross the border is shifted back inside rather than padded.
  const float w = static_cast<float>(bgr.cols - 1), h = static_cast<float>(bgr.rows - 1);
  float scale = std::min({options_.context_scale, h / box.height, w / box.width});
  float nw = box.width * scale, nh = box.height * scale;
  float cx = box.x + box.width / 2, cy = box.y + box.height / 2;
  float x1 = cx - nw / 2, y1 = cy - nh / 2, x2 = cx + nw / 2, y2 = cy + nh / 2;
  if (x1 < 0) x2 -= x1, x1 = 0;
  if (y1 < 0) y2 -= y1, y1 = 0;
  if (x2 > w) x1 -= x2 - w, x2 = w;
  if (y2 > h) y1 -= y2 - h, y2 = h;
  cv::Rect r(cvRound(std::max(x1, 0.f)), cvRound(std::max(y1, 0.f)), cvRound(x2 - x1),
             cvRound(y2 - y1));
  r &= cv::Rect(0, 0, bgr.cols, bgr.rows);
  if (r.width < 2 || r.height < 2) return 0.f;
  std::vector<cv::Mat> crops{bgr(r)};
  if (options_.flip_tta) {
    cv::Mat flipped;
    cv::flip(bgr(r), flipped, 1);
    crops.push_back(flipped);
  }
  float live = 0;
  for (auto& crop : crops) {  // the network's batch size is fixed at 1
    net_.setInput(
        cv::dnn::blobFromImage(crop, 1.0, cv::Size(128, 128), cv::Scalar(), /*swapRB=*/true));
    cv::Mat out = net_.forward();
    live += Softmax(out.ptr<float>(), static_cast<int>(out.total()))[0];
  }
  return live / crops.size();
}

}  // namespace anju::vision
