#include "vision/detector.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>

#include "vision/net.h"

namespace anju::vision {
namespace {
constexpr int kInW = 320, kInH = 240;
}

FaceDetector::FaceDetector(const ModelSet& models, DetectorOptions options)
    : net_(LoadNet(models.file("detector"))), options_(options) {}

float IoU(const cv::Rect2f& a, const cv::Rect2f& b) {
  float inter = (a & b).area();
  float uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0.f;
}

std::vector<FaceBox> NonMaxSuppress(std::vector<FaceBox> boxes, float iou) {
  std::sort(boxes.begin(), boxes.end(), [](auto& a, auto& b) { return a.score > b.score; });
  std::vector<FaceBox> keep;
  for (auto& b : boxes) {
    bool suppressed = false;
    for (auto& k : keep)
      if (IoU(b.box, k.box) > iou) {
        suppressed = true;
        break;
      }
    if (!suppressed) keep.push_back(b);
  }
  return keep;
}

std::vector<FaceBox> FaceDetector::DetectOnce(const cv::Mat& bgr, float threshold) {
  // The network was trained on a plain resize to 320×240 (no letterbox).
  cv::Mat blob = cv::dnn::blobFromImage(bgr, 1.0 / 128, cv::Size(kInW, kInH),
                                        cv::Scalar(127, 127, 127), /*swapRB=*/true);
  net_.setInput(blob);
  std::vector<cv::Mat> outs;
  net_.forward(outs, net_.getUnconnectedOutLayersNames());
  // Outputs: scores 1×N×2 and boxes 1×N×4, in either order.
  const cv::Mat* boxes = &outs[0];
  const cv::Mat* scores = &outs[1];
  if (outs[0].size[2] == 2) std::swap(boxes, scores);
  const int n = boxes->size[1];
  const float* pb = boxes->ptr<float>();
  const float* ps = scores->ptr<float>();
  std::vector<FaceBox> found;
  const float sx = static_cast<float>(bgr.cols), sy = static_cast<float>(bgr.rows);
  for (int i = 0; i < n; ++i) {
    float s = ps[i * 2 + 1];
    if (s < threshold) continue;
    cv::Rect2f r(pb[i * 4] * sx, pb[i * 4 + 1] * sy, (pb[i * 4 + 2] - pb[i * 4]) * sx,
                 (pb[i * 4 + 3] - pb[i * 4 + 1]) * sy);
    if (r.width <= 1 || r.height <= 1) continue;
    found.push_back({r, s});
  }
  found = NonMaxSuppress(std::move(found), options_.nms_iou);
  for (auto& f : found) f.box = SquareAround(f.box, f.box.height);
  return found;
}

std::vector<FaceBox> FaceDetector::Detect(const cv::Mat& bgr) {
  std::vector<FaceBox> all = DetectOnce(bgr, options_.score_threshold);
  int tiles = options_.tiles;
  if (tiles == 0) tiles = bgr.cols > 960 ? 2 : 1;
  if (tiles > 1) {
    // Overlap of a quarter tile so a face on a seam is whole in one tile.
    const float tw = bgr.cols / (tiles - (tiles - 1) * 0.25f);
    const float th = bgr.rows / (tiles - (tiles - 1) * 0.25f);
    for (int ty = 0; ty < tiles; ++ty)
      for (int tx = 0; tx < tiles; ++tx) {
        cv::Rect tile(cvRound(tx * tw * 0.75f), cvRound(ty * th * 0.75f), cvRound(tw), cvRound(th));
        tile &= cv::Rect(0, 0, bgr.cols, bgr.rows);
        for (auto f : DetectOnce(bgr(tile), options_.score_threshold)) {
          f.box.x += tile.x;
          f.box.y += tile.y;
          all.push_back(f);
        }
      }
    all = NonMaxSuppress(std::move(all), options_.nms_iou);
  }
  std::erase_if(all, [&](const FaceBox& f) { return f.box.height < options_.min_face_size; });
  return all;
}

}  // namespace anju::vision
