// Face quality: the parts (size, sharpness, brightness, pose, eyes) and one score, so
// that enrolment can reject a photo with a reason and capture can keep the best frame.
#pragma once

#include <opencv2/core.hpp>

#include <string>
#include <vector>

#include "vision/types.h"

namespace anju::vision {

struct Quality {
  float face_size = 0;    // box side, pixels
  float inter_pupil = 0;  // distance between eye centres, pixels
  float sharpness = 0;    // variance of the Laplacian on the aligned crop
  float brightness = 0;   // mean grey level of the aligned crop, 0..255
  float contrast = 0;     // grey standard deviation of the aligned crop
  HeadPose pose;
  float eyes_open = -1;  // 0..1, -1 when not measured
  float score = 0;       // 0..1 overall
};

struct QualityPolicy {  // defaults suit enrolment photos
  float min_inter_pupil = 24;
  float min_sharpness = 40;
  float min_brightness = 50, max_brightness = 215;
  float max_yaw = 25, max_pitch = 20, max_roll = 25;
  float min_eyes_open = 0.3f;
};

// Combines the parts; `aligned` is the 112×112 crop.
Quality MeasureQuality(const cv::Mat& aligned, const Points5& points, const cv::Rect2f& box,
                       const HeadPose& pose, float eyes_open);

// Machine-readable reasons a face fails the policy (empty = acceptable):
// too_small, blurred, too_dark, too_bright, not_frontal, eyes_closed.
std::vector<std::string> QualityProblems(const Quality& q, const QualityPolicy& policy);

}  // namespace anju::vision
