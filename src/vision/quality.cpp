#include "vision/quality.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

namespace anju::vision {

Quality MeasureQuality(const cv::Mat& aligned, const Points5& pts, const cv::Rect2f& box,
                       const HeadPose& pose, float eyes_open) {
  Quality q;
  q.face_size = box.height;
  q.inter_pupil = static_cast<float>(cv::norm(pts[1] - pts[0]));
  cv::Mat grey, lap;
  cv::cvtColor(aligned, grey, cv::COLOR_BGR2GRAY);
  // Only the central face region: the template's corners are background or black.
  cv::Mat centre = grey(cv::Rect(24, 30, 64, 70));
  cv::Laplacian(centre, lap, CV_32F);
  cv::Scalar mean, stddev;
  cv::meanStdDev(lap, mean, stddev);
  q.sharpness = static_cast<float>(stddev[0] * stddev[0]);
  cv::meanStdDev(centre, mean, stddev);
  q.brightness = static_cast<float>(mean[0]);
  q.contrast = static_cast<float>(stddev[0]);
  q.pose = pose;
  q.eyes_open = eyes_open;

  // Each part maps to 0..1; the score is their product so that one bad part sinks it.
  auto ramp = [](float v, float lo, float hi) {
    return std::clamp((v - lo) / (hi - lo), 0.f, 1.f);
  };
  float size = ramp(q.inter_pupil, 10, 40);
  float sharp = ramp(q.sharpness, 10, 120);
  float light = std::min(ramp(q.brightness, 30, 80), 1 - ramp(q.brightness, 190, 240));
  float angle = std::max(std::abs(pose.yaw), std::abs(pose.pitch) * 1.5f);
  float frontal = 1 - ramp(angle, 15, 60);
  float eyes = eyes_open < 0 ? 1.f : 0.5f + 0.5f * eyes_open;
  q.score = size * sharp * light * frontal * eyes;
  return q;
}

std::vector<std::string> QualityProblems(const Quality& q, const QualityPolicy& p) {
  std::vector<std::string> out;
  if (q.inter_pupil < p.min_inter_pupil) out.push_back("too_small");
  if (q.sharpness < p.min_sharpness) out.push_back("blurred");
  if (q.brightness < p.min_brightness) out.push_back("too_dark");
  if (q.brightness > p.max_brightness) out.push_back("too_bright");
  if (std::abs(q.pose.yaw) > p.max_yaw || std::abs(q.pose.pitch) > p.max_pitch ||
      std::abs(q.pose.roll) > p.max_roll)
    out.push_back("not_frontal");
  if (q.eyes_open >= 0 && q.eyes_open < p.min_eyes_open) out.push_back("eyes_closed");
  return out;
}

}  // namespace anju::vision
