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

// The terminal's per-frame gate (docs/terminal.md): a face is matched only when its box is
// large enough (nearer the door) and its quality score — size, sharpness, light, pose and eyes
// in one number — is high enough; otherwise the terminal waits for a better frame (asks the
// person to face the camera) instead of matching a profile or a blur. The evaluators apply
// the same gate to probes (anju eval identify), so their figures are the terminal's.
struct FrameGate {
  float min_face_px = 60;     // larger side of the face box, pixels
  float min_quality = 0.15f;  // Quality::score
  bool LargeEnough(float face_px) const { return face_px >= min_face_px; }
  bool GoodEnough(float quality_score) const { return quality_score >= min_quality; }
  // nullptr when the face may be matched, else "too_small" or "low_quality".
  const char* Refusal(float face_px, float quality_score) const {
    if (!LargeEnough(face_px)) return "too_small";
    if (!GoodEnough(quality_score)) return "low_quality";
    return nullptr;
  }
};

// Machine-readable reasons a face fails the policy (empty = acceptable):
// too_small, blurred, too_dark, too_bright, not_frontal, eyes_closed.
std::vector<std::string> QualityProblems(const Quality& q, const QualityPolicy& policy);

}  // namespace anju::vision
