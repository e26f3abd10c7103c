// The lower face of an aligned crop compared with the upper face it belongs to. Skin
// above the eyes and between them is the reference (masks do not reach it); a mask
// makes the nose-mouth-chin region differ from it in colour (CIELAB chroma) and/or
// brightness, and hides the lips' dark horizontal edge. Greyscale crops (IR cameras,
// LFW) only have the brightness and edge cues. Coefficients were set by hand on
// masked/ + mfr2 vs LFW/asian; the rates are in docs/terminal.md.
#include "terminal/mask.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

namespace anju::terminal {
namespace {

struct RegionStats {
  cv::Scalar mean, stddev;
};

RegionStats Stats(const cv::Mat& lab, const cv::Rect& r) {
  RegionStats s;
  cv::meanStdDev(lab(r & cv::Rect(0, 0, lab.cols, lab.rows)), s.mean, s.stddev);
  return s;
}

float Sigmoid(float x) {
  return 1.f / (1.f + std::exp(-x));
}

}  // namespace

float MaskScore(const cv::Mat& aligned_bgr) {
  if (aligned_bgr.empty() || aligned_bgr.type() != CV_8UC3) return 0.f;
  cv::Mat img = aligned_bgr;
  if (img.cols != 112 || img.rows != 112) cv::resize(aligned_bgr, img, cv::Size(112, 112));
  cv::Mat lab;
  img.convertTo(lab, CV_32F, 1.0 / 255.0);
  cv::cvtColor(lab, lab, cv::COLOR_BGR2Lab);  // L 0..100, a/b about −128..127
  // ArcFace template: eyes at y≈51.6, nose tip (56, 71.7), mouth corners y≈92.
  const RegionStats upper = Stats(lab, cv::Rect(36, 28, 40, 16));  // brow band, between eyes
  const RegionStats lower = Stats(lab, cv::Rect(34, 76, 44, 28));  // nostrils → chin
  const RegionStats cheeks_l = Stats(lab, cv::Rect(18, 64, 16, 18));
  const RegionStats cheeks_r = Stats(lab, cv::Rect(78, 64, 16, 18));
  const float chroma_up = std::hypot(float(upper.mean[1]), float(upper.mean[2]));
  const bool colour = chroma_up > 4.f;  // a greyscale image has a = b = 0
  float da = float(lower.mean[1] - upper.mean[1]);
  float db = float(lower.mean[2] - upper.mean[2]);
  const float chroma_diff = colour ? std::hypot(da, db) : 0.f;
  // Skin below the nose keeps roughly the chroma of the brow; a mask does not.
  const float chroma_lower = std::hypot(float(lower.mean[1]), float(lower.mean[2]));
  const float chroma_ratio = colour ? chroma_lower / std::max(chroma_up, 1.f) : 1.f;
  const float chroma_cheeks =
      colour ? 0.5f *
                   (std::hypot(float(cheeks_l.mean[1]), float(cheeks_l.mean[2])) +
                    std::hypot(float(cheeks_r.mean[1]), float(cheeks_r.mean[2]))) /
                   std::max(chroma_up, 1.f)
             : 1.f;
  const float dl = std::abs(float(lower.mean[0] - upper.mean[0]));
  // Lips: a dark band across the mouth; a mask is smooth or folded but not darker there.
  cv::Mat grey;
  cv::cvtColor(img, grey, cv::COLOR_BGR2GRAY);
  const double mouth = cv::mean(grey(cv::Rect(40, 88, 32, 8)))[0];
  const double around = 0.5 * (cv::mean(grey(cv::Rect(40, 78, 32, 8)))[0] +
                               cv::mean(grey(cv::Rect(40, 100, 32, 8)))[0]);
  const float lip_contrast = float(around - mouth) / 255.f * 100.f;  // >0 on bare lips
  float x = -2.5f;
  x += 0.12f * chroma_diff;
  x += colour ? 3.0f * (1.f - std::min(chroma_ratio, chroma_cheeks)) : 0.f;
  x += 0.05f * dl;
  x -= 0.25f * lip_contrast;
  return Sigmoid(x);
}

}  // namespace anju::terminal
