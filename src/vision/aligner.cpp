#include "vision/aligner.h"

#include <opencv2/imgproc.hpp>

namespace anju::vision {

const Points5& ArcFaceTemplate() {
  static const Points5 t = {cv::Point2f(38.2946f, 51.6963f), cv::Point2f(73.5318f, 51.5014f),
                            cv::Point2f(56.0252f, 71.7366f), cv::Point2f(41.5493f, 92.3655f),
                            cv::Point2f(70.7299f, 92.2041f)};
  return t;
}

cv::Mat EstimateSimilarity(const std::vector<cv::Point2f>& from,
                           const std::vector<cv::Point2f>& to) {
  const size_t n = from.size();
  cv::Point2d mf(0, 0), mt(0, 0);
  for (size_t i = 0; i < n; ++i) mf += cv::Point2d(from[i]), mt += cv::Point2d(to[i]);
  mf *= 1.0 / n, mt *= 1.0 / n;
  // With complex numbers z = x + iy the best similarity is t = a·f + b, where
  // a = Σ conj(f−mf)(t−mt) / Σ |f−mf|².
  double re = 0, im = 0, var = 0;
  for (size_t i = 0; i < n; ++i) {
    cv::Point2d f = cv::Point2d(from[i]) - mf, t = cv::Point2d(to[i]) - mt;
    re += f.x * t.x + f.y * t.y;
    im += f.x * t.y - f.y * t.x;
    var += f.x * f.x + f.y * f.y;
  }
  double a = var > 0 ? re / var : 1, b = var > 0 ? im / var : 0;
  cv::Mat m = (cv::Mat_<double>(2, 3) << a, -b, mt.x - (a * mf.x - b * mf.y), b, a,
               mt.y - (b * mf.x + a * mf.y));
  return m;
}

cv::Mat AlignFace(const cv::Mat& bgr, const Points5& points) {
  std::vector<cv::Point2f> from(points.begin(), points.end());
  std::vector<cv::Point2f> to(ArcFaceTemplate().begin(), ArcFaceTemplate().end());
  cv::Mat m = EstimateSimilarity(from, to), out;
  cv::warpAffine(bgr, out, m, cv::Size(kAlignedSize, kAlignedSize), cv::INTER_LINEAR,
                 cv::BORDER_CONSTANT, cv::Scalar::all(0));
  return out;
}

}  // namespace anju::vision
