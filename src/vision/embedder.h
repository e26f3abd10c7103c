// Feature extractor: aligned 112×112 crop → 512-d L2-normalised feature code.
#pragma once

#include <opencv2/dnn.hpp>

#include "vision/model_set.h"
#include "vision/types.h"

namespace anju::vision {

struct EmbedderOptions {
  // Embed the mirror image too and sum both (test-time augmentation); measured in
  // BENCHMARKS.md, on by default because it is more accurate.
  bool flip_tta = true;
};

class Embedder {
 public:
  Embedder(const ModelSet& models, EmbedderOptions options = {});
  Feature Embed(const cv::Mat& aligned_bgr);
  // Several aligned crops in one network run (one blob of N, or 2N with their mirrors);
  // the same features as N calls of Embed up to float rounding.
  std::vector<Feature> EmbedBatch(const std::vector<cv::Mat>& aligned_bgr, bool flip_tta);
  const std::string& model_version() const { return version_; }
  const EmbedderOptions& options() const { return options_; }
  void set_options(const EmbedderOptions& o) { options_ = o; }

 private:
  cv::dnn::Net net_;
  EmbedderOptions options_;
  std::string version_;
};

// Cosine similarity of two L2-normalised features. Throws Error(kInvalidArgument) if
// the features come from different model versions or have different sizes.
float Similarity(const Feature& a, const Feature& b);

}  // namespace anju::vision
