#include "vision/embedder.h"

#include <opencv2/core.hpp>

#include <cmath>

#include "core/error.h"
#include "vision/net.h"

namespace anju::vision {

Embedder::Embedder(const ModelSet& models, EmbedderOptions options)
    : net_(LoadNet(models.file("embedder"))),
      options_(options),
      version_(models.feature_version()) {}

Feature Embedder::Embed(const cv::Mat& aligned) {
  return EmbedBatch({aligned}, options_.flip_tta)[0];
}

std::vector<Feature> Embedder::EmbedBatch(const std::vector<cv::Mat>& aligned, bool flip_tta) {
  if (aligned.empty()) return {};
  // Rows 0..N-1 are the crops, N..2N-1 their mirrors.
  std::vector<cv::Mat> images(aligned.begin(), aligned.end());
  if (flip_tta)
    for (const auto& a : aligned) {
      cv::Mat flipped;
      cv::flip(a, flipped, 1);
      images.push_back(flipped);
    }
  cv::Mat blob = cv::dnn::blobFromImages(images, 1.0 / 128, cv::Size(112, 112),
                                         cv::Scalar(127, 127, 127), /*swapRB=*/true);
  net_.setInput(blob);
  cv::Mat out = net_.forward();
  out = out.reshape(1, static_cast<int>(images.size()));
  const int dim = out.cols;
  const size_t n = aligned.size();
  std::vector<Feature> features(n);
  for (size_t k = 0; k < n; ++k) {
    Feature& f = features[k];
    f.model_version = version_;
    f.values.assign(dim, 0.f);
    for (size_t r = k; r < images.size(); r += n)
      for (int i = 0; i < dim; ++i) f.values[i] += out.at<float>(static_cast<int>(r), i);
    double norm = 0;
    for (float v : f.values) norm += double{v} * v;
    norm = std::sqrt(norm);
    if (norm > 0)
      for (float& v : f.values) v = static_cast<float>(v / norm);
  }
  return features;
}

float Similarity(const Feature& a, const Feature& b) {
  if (a.model_version != b.model_version)
    throw Error(ErrorCode::kInvalidArgument, "features of different models cannot be compared: " +
                                                 a.model_version + " vs " + b.model_version);
  if (a.values.size() != b.values.size())
    throw Error(ErrorCode::kInvalidArgument, "feature sizes differ");
  double s = 0;
  for (size_t i = 0; i < a.values.size(); ++i) s += double{a.values[i]} * b.values[i];
  return static_cast<float>(s);
}

}  // namespace anju::vision
