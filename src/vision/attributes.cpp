#include "vision/attributes.h"

#include <opencv2/imgproc.hpp>

#include <cmath>

#include "vision/net.h"

namespace anju::vision {
namespace {
// Index of "open" in the eye network's two outputs, checked on LFW (eyes open) and
// on closed-eye crops in tests/vision.
constexpr int kOpenClass = 1;
}  // namespace

PoseEstimator::PoseEstimator(const ModelSet& models) : net_(LoadNet(models.file("pose"))) {}

HeadPose PoseEstimator::Estimate(const cv::Mat& bgr, const cv::Rect2f& b) {
  cv::Rect r(cvRound(b.x - b.width / 4), cvRound(b.y - b.height / 4), cvRound(b.width * 1.5f),
             cvRound(b.height * 1.5f));
  cv::Mat crop = CropWithBorder(bgr, r), rgb;
  cv::resize(crop, rgb, cv::Size(224, 224));
  cv::cvtColor(rgb, rgb, cv::COLOR_BGR2RGB);
  rgb.convertTo(rgb, CV_32FC3, 1.0 / 255);
  cv::subtract(rgb, cv::Scalar(0.485, 0.456, 0.406), rgb);
  cv::divide(rgb, cv::Scalar(0.229, 0.224, 0.225), rgb);
  net_.setInput(cv::dnn::blobFromImage(rgb));
  std::vector<cv::Mat> outs;
  net_.forward(outs, net_.getUnconnectedOutLayersNames());
  auto angle = [](const cv::Mat& m) {
    auto p = Softmax(m.ptr<float>(), static_cast<int>(m.total()));
    float e = 0;
    for (size_t i = 0; i < p.size(); ++i) e += p[i] * i;
    return e * 3 - 99;
  };
  // Output order in the file: yaw ("output"), pitch, roll.
  HeadPose pose;
  auto names = net_.getUnconnectedOutLayersNames();
  for (size_t i = 0; i < names.size(); ++i) {
    float a = angle(outs[i]);
    if (names[i] == "output")
      pose.yaw = a;
    else if (names[i] == "617")
      pose.pitch = a;
    else
      pose.roll = a;
  }
  return pose;
}

HeadPose PoseFromLandmarks(const Landmarks68& lm) {
  auto mean = [&](int from, int to) {
    cv::Point2f s(0, 0);
    for (int i = from; i <= to; ++i) s += lm[i];
    return s * (1.f / (to - from + 1));
  };
  cv::Point2f le = mean(36, 41), re = mean(42, 47), mouth = mean(48, 59), nose = lm[30];
  // Jaw extremes give the face's width; the nose's position between them gives yaw.
  float left = cv::norm(nose - lm[2]), right = cv::norm(lm[14] - nose);
  float ratio = (right - left) / std::max(1e-3f, right + left);
  // Scales fitted against the pose network on 485 LFW + CFP-profile faces
  // (correlation ≈ 0.72 for yaw, 0.78 for pitch; ±20° residual): coarse, but free.
  HeadPose p;
  p.yaw = 44.f * ratio;
  p.roll = std::atan2(re.y - le.y, re.x - le.x) * 180.f / static_cast<float>(CV_PI);
  cv::Point2f eyes = (le + re) * 0.5f;
  float span = cv::norm(mouth - eyes);
  float t = span > 0 ? cv::norm(nose - eyes) / span : 0.6f;  // ≈0.6 when frontal
  p.pitch = (0.6f - t) * 70.f;  // same sign convention as the pose network
  return p;
}

EyeStateClassifier::EyeStateClassifier(const ModelSet& models)
    : net_(LoadNet(models.file("eyes"))) {}

float EyeStateClassifier::OpenProbability(const cv::Mat& bgr, const Landmarks68& lm) {
  float total = 0;
  for (int eye = 0; eye < 2; ++eye) {
    int b = eye == 0 ? 36 : 42;
    cv::Point2f c = (lm[b + 1] + lm[b + 2] + lm[b + 4] + lm[b + 5]) * 0.25f;
    float size = cv::norm(lm[b + 3] - lm[b]) * 1.6f;
    cv::Rect r(cvRound(c.x - size / 2), cvRound(c.y - size / 2), std::max(2, cvRound(size)),
               std::max(2, cvRound(size)));
    cv::Mat crop = CropWithBorder(bgr, r), grey;
    cv::cvtColor(crop, grey, cv::COLOR_BGR2GRAY);
    net_.setInput(cv::dnn::blobFromImage(grey, 1.0 / 255, cv::Size(24, 24)));
    cv::Mat out = net_.forward();
    total += Softmax(out.ptr<float>(), static_cast<int>(out.total()))[kOpenClass];
  }
  return total / 2;
}

}  // namespace anju::vision
