// Face detector (Ultra-Light-Fast RFB-320 by default): boxes and scores with NMS.
#pragma once

#include <opencv2/dnn.hpp>

#include <vector>

#include "vision/model_set.h"
#include "vision/types.h"

namespace anju::vision {

struct DetectorOptions {
  float score_threshold = 0.7f;
  float nms_iou = 0.4f;
  int min_face_size = 20;  // pixels in the input image; smaller boxes are dropped
  // Tiled mode for large frames: besides the whole frame, run the detector on a
  // tiles×tiles grid of overlapping windows so that faces of ~1/25 of the frame height
  // are still seen (children, wheelchair users further from a 1080p camera).
  // 0 = automatic (2×2 when the frame is larger than 960 pixels wide), 1 = off.
  int tiles = 0;
};

class FaceDetector {
 public:
  FaceDetector(const ModelSet& models, DetectorOptions options = {});
  // Boxes are square (side = detected height), sorted by score, most confident first.
  std::vector<FaceBox> Detect(const cv::Mat& bgr);
  // One pass over the whole image with an explicit threshold, no tiling.
  std::vector<FaceBox> DetectOnce(const cv::Mat& bgr, float score_threshold);
  const DetectorOptions& options() const { return options_; }
  void set_options(const DetectorOptions& o) { options_ = o; }

 private:
  cv::dnn::Net net_;
  DetectorOptions options_;
};

// Greedy non-maximum suppression by IoU; keeps the higher score.
std::vector<FaceBox> NonMaxSuppress(std::vector<FaceBox> boxes, float iou);
float IoU(const cv::Rect2f& a, const cv::Rect2f& b);

}  // namespace anju::vision
