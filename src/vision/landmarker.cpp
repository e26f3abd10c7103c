#include "vision/landmarker.h"

#include <opencv2/imgproc.hpp>

#include "vision/net.h"

namespace anju::vision {

Landmarker::Landmarker(const ModelSet& models) : net_(LoadNet(models.file("landmarks"))) {}

Landmarks68 Landmarker::DetectOnce(const cv::Mat& bgr, const cv::Rect2f& box) {
  cv::Rect r(cvRound(box.x), cvRound(box.y), std::max(1, cvRound(box.width)),
             std::max(1, cvRound(box.height)));
  cv::Mat crop = CropWithBorder(bgr, r), grey;
  cv::cvtColor(crop, grey, cv::COLOR_BGR2GRAY);
  cv::Mat blob = cv::dnn::blobFromImage(grey, 1.0 / 256, cv::Size(64, 64));
  net_.setInput(blob);
  cv::Mat out = net_.forward();
  const float* p = out.ptr<float>();
  Landmarks68 lm;
  for (int i = 0; i < 68; ++i) lm[i] = {p[2 * i] * r.width + r.x, p[2 * i + 1] * r.height + r.y};
  return lm;
}

Landmarks68 Landmarker::Detect(const cv::Mat& bgr, const cv::Rect2f& box, bool refine) {
  Landmarks68 lm = DetectOnce(bgr, box);
  if (!refine) return lm;
  // The network expects the box a detector draws on an ordinary photo: on LFW and
  // CFP that box is ≈1.3× the landmarks' extent, centred ≈0.14 extent above their
  // centre. Re-drawing the box that way from the first estimate corrects boxes that
  // are too large (tight crops, padded images) or off-centre, and a second pass then
  // lands the points where they belong.
  cv::Rect2f current = box;
  for (int pass = 0; pass < 2; ++pass) {
    const cv::Rect2f redrawn = BoxFromLandmarks(lm);
    if (redrawn.empty()) break;
    // On ordinary frames the detector's box already agrees; only a box that is
    // clearly off costs another pass (keeps the common case at one network run).
    if ((redrawn & current).area() / (redrawn | current).area() > 0.75f) break;
    lm = DetectOnce(bgr, redrawn);
    current = redrawn;
  }
  return lm;
}

cv::Rect2f BoxFromLandmarks(const Landmarks68& lm) {
  cv::Point2f lo(1e9f, 1e9f), hi(-1e9f, -1e9f);
  for (auto& p : lm) {
    lo.x = std::min(lo.x, p.x), lo.y = std::min(lo.y, p.y);
    hi.x = std::max(hi.x, p.x), hi.y = std::max(hi.y, p.y);
  }
  const float extent = std::max(hi.x - lo.x, hi.y - lo.y);
  if (!(extent >= 4)) return {};
  const float side = 1.3f * extent;
  const float cx = (lo.x + hi.x) / 2, cy = (lo.y + hi.y) / 2 - 0.14f * extent;
  return {cx - side / 2, cy - side / 2, side, side};
}

Points5 ToPoints5(const Landmarks68& lm) {
  auto mean = [&](std::initializer_list<int> idx) {
    cv::Point2f s(0, 0);
    for (int i : idx) s += lm[i];
    return s * (1.f / idx.size());
  };
  return {mean({37, 38, 40, 41}), mean({43, 44, 46, 47}), lm[30], mean({48, 60}), mean({54, 64})};
}

}  // namespace anju::vision
