#include "vision/net.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace anju::vision {

cv::dnn::Net LoadNet(const ModelFile& file) {
  try {
    cv::dnn::Net net = cv::dnn::readNetFromONNX(reinterpret_cast<const char*>(file.bytes.data()),
                                                file.bytes.size());
    if (net.empty()) throw Error(ErrorCode::kModel, "empty network: " + file.path.string());
    net.setPreferableBackend(cv::dnn::DNN_BACKEND_OPENCV);
    net.setPreferableTarget(cv::dnn::DNN_TARGET_CPU);
    return net;
  } catch (const cv::Exception& e) {
    throw Error(ErrorCode::kModel, "cannot load model " + file.path.string() + ": " + e.what());
  }
}

cv::Mat CropWithBorder(const cv::Mat& image, const cv::Rect& rect) {
  cv::Rect inside = rect & cv::Rect(0, 0, image.cols, image.rows);
  if (inside == rect) return image(rect).clone();
  cv::Mat out(rect.size(), image.type(), cv::Scalar::all(0));
  if (inside.area() > 0) image(inside).copyTo(out(inside - rect.tl()));
  return out;
}

cv::Rect2f SquareAround(const cv::Rect2f& r, float side) {
  float cx = r.x + r.width / 2, cy = r.y + r.height / 2;
  return {cx - side / 2, cy - side / 2, side, side};
}

std::vector<float> Softmax(const float* logits, int n) {
  std::vector<float> p(logits, logits + n);
  float mx = *std::max_element(p.begin(), p.end());
  float sum = 0;
  for (auto& v : p) sum += (v = std::exp(v - mx));
  for (auto& v : p) v /= sum;
  return p;
}

}  // namespace anju::vision
