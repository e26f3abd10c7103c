// Plain data that flows through the vision pipeline: image → boxes → landmarks →
// aligned crop → feature. Stages never keep per-image state.
#pragma once

#include <opencv2/core.hpp>

#include <array>
#include <string>
#include <vector>

namespace anju::vision {

struct FaceBox {
  cv::Rect2f box;     // pixels in the input image
  float score = 0.f;  // detector confidence 0..1
};

// 68-point iBUG layout.
using Landmarks68 = std::array<cv::Point2f, 68>;
// Left eye, right eye (in the image), nose tip, left mouth corner, right mouth corner.
using Points5 = std::array<cv::Point2f, 5>;

struct HeadPose {
  float yaw = 0.f, pitch = 0.f, roll = 0.f;  // degrees; yaw > 0 = turned to the image's right
};

// A feature code: L2-normalised embedding and the version of the model that made it.
// Features of different model versions must never be compared.
struct Feature {
  std::vector<float> values;
  std::string model_version;
};

}  // namespace anju::vision
