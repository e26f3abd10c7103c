// Passive RGB anti-spoofing (R3.1.2.4): one frame and a face box → probability that
// the face is live. Print and replay attacks only; no depth or IR here.
#pragma once

#include <opencv2/dnn.hpp>

#include "vision/model_set.h"
#include "vision/types.h"

namespace anju::vision {

struct LivenessOptions {
  // Chosen before looking at the evaluation set (see BENCHMARKS.md for how).
  float threshold = 0.5f;
  float context_scale = 2.7f;  // the network sees the face box enlarged by this much
  // Average the live probability of the crop and its mirror image. On NUAA it lowers
  // BPCER at the same threshold (BENCHMARKS.md); costs a second network run.
  bool flip_tta = true;
};

class LivenessChecker {
 public:
  LivenessChecker(const ModelSet& models, LivenessOptions options = {});
  // 0..1, higher = more likely a live face.
  float Score(const cv::Mat& bgr, const cv::Rect2f& face_box);
  bool IsLive(float score) const { return score >= options_.threshold; }
  const LivenessOptions& options() const { return options_; }
  void set_options(const LivenessOptions& o) { options_ = o; }

 private:
  cv::dnn::Net net_;
  LivenessOptions options_;
};

}  // namespace anju::vision
