#include "capture/quality.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "vision/aligner.h"

namespace anju::capture {

void PoseFromPoints5(const vision::Points5& p, float* yaw, float* pitch) {
  const cv::Point2f eyes = (p[0] + p[1]) * 0.5f, mouth = (p[3] + p[4]) * 0.5f;
  const float eye_dist = std::max(1e-3f, static_cast<float>(cv::norm(p[1] - p[0])));
  // Horizontal offset of the nose from the line through the eye and mouth midpoints.
  const cv::Point2f axis = mouth - eyes;
  const float len = std::max(1e-3f, static_cast<float>(cv::norm(axis)));
  const cv::Point2f n = p[2] - eyes;
  const float across = (n.x * axis.y - n.y * axis.x) / len;  // signed distance
  // Simple head model: the nose tip stands ~0.4 eye distances in front of the eye plane,
  // so the offset over the (foreshortened) eye distance is ≈0.4·tan(yaw); vertically,
  // the nose sits half-way between the eye and mouth lines (ArcFace template: 0.49) and
  // moves by ≈0.36·tan(pitch).
  const float r = across / eye_dist;
  *yaw = std::atan(r / 0.4f) * 180.f / float(CV_PI);
  const float along = (n.x * axis.x + n.y * axis.y) / (len * len);
  *pitch = std::atan((0.49f - along) / 0.36f) * 180.f / float(CV_PI);
}

FaceQuality MeasureFace(const cv::Mat& frame, const vision::DetectedFace& face) {
  FaceQuality q;
  q.size = std::max(face.det.box.width, face.det.box.height);
  q.detector = face.det.score;
  PoseFromPoints5(face.points, &q.yaw, &q.pitch);
  // Measured on the crop as the camera saw it (face.aligned may be illumination-
  // normalised), at the 112×112 template scale: an upsampled small face is soft.
  const cv::Mat aligned = vision::AlignFace(frame, face.points);
  cv::Mat grey, lap;
  cv::cvtColor(aligned, grey, cv::COLOR_BGR2GRAY);
  const cv::Mat centre = grey(cv::Rect(24, 30, 64, 70));
  cv::Laplacian(centre, lap, CV_32F);
  cv::Scalar mean, stddev;
  cv::meanStdDev(lap, mean, stddev);
  q.sharpness = static_cast<float>(stddev[0] * stddev[0]);
  q.brightness = static_cast<float>(cv::mean(centre)[0]);

  auto ramp = [](float v, float lo, float hi) {
    return std::clamp((v - lo) / (hi - lo), 0.f, 1.f);
  };
  // Parts in 0.1..1 rather than 0..1: a track whose every frame is small or dark still
  // ranks its frames (the best of bad frames is captured; the server gates quality).
  const float size = 0.1f + 0.9f * ramp(q.size, 30, 140);
  const float sharp = 0.1f + 0.9f * ramp(q.sharpness, 15, 150);
  const float light =
      0.1f + 0.9f * std::min(ramp(q.brightness, 25, 80), 1 - ramp(q.brightness, 200, 250));
  const float angle = std::max(std::abs(q.yaw), std::abs(q.pitch) * 1.5f);
  const float frontal = 0.1f + 0.9f * (1 - ramp(angle, 10, 60));
  const float det = 0.5f + 0.5f * ramp(q.detector, 0.5f, 1.f);
  q.score = size * sharp * light * frontal * det;
  return q;
}

}  // namespace anju::capture
