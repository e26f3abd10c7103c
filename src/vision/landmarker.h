// 68-point landmarker on the square face box, and the reduction to the 5 points
// used for alignment.
#pragma once

#include <opencv2/dnn.hpp>

#include "vision/model_set.h"
#include "vision/types.h"

namespace anju::vision {

class Landmarker {
 public:
  explicit Landmarker(const ModelSet& models);
  // `box` should be the detector's square box. With refine, the box is re-drawn from
  // the estimated points and the network runs again (at most twice) when the box was
  // clearly off (see landmarker.cpp).
  Landmarks68 Detect(const cv::Mat& bgr, const cv::Rect2f& box, bool refine = true);
  // One network run on BOX, no re-drawing.
  Landmarks68 DetectOnce(const cv::Mat& bgr, const cv::Rect2f& box);

 private:
  cv::dnn::Net net_;
};

// Eyes = mean of the four eye-contour points (37/38/40/41 and 43/44/46/47, 0-based
// 36..47), nose tip = 30, mouth corners = mean of the outer and inner corner.
Points5 ToPoints5(const Landmarks68& lm);

// The box the network expects around LM (≈1.3× the points' extent, centred ≈0.14 extent
// above their centre, as a detector draws it on ordinary photos); empty if the points
// collapse to under 4 px.
cv::Rect2f BoxFromLandmarks(const Landmarks68& lm);

}  // namespace anju::vision
