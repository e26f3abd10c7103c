// Secondary face models used for quality: head pose (yaw/pitch/roll) and eye state.
#pragma once

#include <opencv2/dnn.hpp>

#include "vision/model_set.h"
#include "vision/types.h"

namespace anju::vision {

// Hopenet-style pose network (66 bins of 3°) on the box enlarged by a quarter per side.
class PoseEstimator {
 public:
  explicit PoseEstimator(const ModelSet& models);
  HeadPose Estimate(const cv::Mat& bgr, const cv::Rect2f& face_box);

 private:
  cv::dnn::Net net_;
};

// Cheap pose from landmark geometry (no network): yaw from the nose tip's offset
// between the eyes/mouth, roll from the eye line, pitch from the nose's vertical
// position between eyes and mouth. Coarser than the network, but free.
HeadPose PoseFromLandmarks(const Landmarks68& lm);

// Probability that both eyes are open (mean of the two eyes), from 24×24 eye crops.
class EyeStateClassifier {
 public:
  explicit EyeStateClassifier(const ModelSet& models);
  float OpenProbability(const cv::Mat& bgr, const Landmarks68& lm);

 private:
  cv::dnn::Net net_;
};

}  // namespace anju::vision
