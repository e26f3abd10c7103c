#include "vision/liveness.h"

#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/error.h"
#include "vision/net.h"

namespace anju::vision {

const char* LivenessFusionName(LivenessFusion f) {
  switch (f) {
    case LivenessFusion::kLogitMean:
      return "logit_mean";
    case LivenessFusion::kMean:
      return "mean";
    case LivenessFusion::kMedian:
      return "median";
    case LivenessFusion::kMin:
      return "min";
  }
  return "unknown";
}

LivenessFusion ParseLivenessFusion(std::string_view s) {
  for (auto f : {LivenessFusion::kLogitMean, LivenessFusion::kMean, LivenessFusion::kMedian,
                 LivenessFusion::kMin})
    if (s == LivenessFusionName(f)) return f;
  throw Error(ErrorCode::kInvalidArgument, "活体融合规则无效 / unknown liveness fusion '" +
                                               std::string(s) +
                                               "' (logit_mean, mean, median, min)");
}

float FuseLiveness(std::span<const float> scores, LivenessFusion fusion) {
  if (scores.empty()) return 0.f;
  std::vector<float> v(scores.begin(), scores.end());
  switch (fusion) {
    case LivenessFusion::kLogitMean: {
      // Probabilities are clamped so that one frame at exactly 0 or 1 (float saturation)
      // counts as very sure, not infinitely sure.
      double sum = 0;
      for (float p : v) {
        const double q = std::clamp(static_cast<double>(p), 1e-7, 1 - 1e-7);
        sum += std::log(q / (1 - q));
      }
      return static_cast<float>(1 / (1 + std::exp(-sum / double(v.size()))));
    }
    case LivenessFusion::kMean: {
      double sum = 0;
      for (float p : v) sum += p;
      return static_cast<float>(sum / double(v.size()));
    }
    case LivenessFusion::kMedian: {
      std::sort(v.begin(), v.end());
      const size_t n = v.size();
      return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }
    case LivenessFusion::kMin:
      return *std::min_element(v.begin(), v.end());
  }
  return 0.f;
}

cv::Rect LivenessCrop(cv::Size image, const cv::Rect2f& box, float context_scale) {
  if (box.width <= 0 || box.height <= 0) return {};
  const float w = static_cast<float>(image.width - 1), h = static_cast<float>(image.height - 1);
  float scale = std::min({context_scale, h / box.height, w / box.width});
  float nw = box.width * scale, nh = box.height * scale;
  float cx = box.x + box.width / 2, cy = box.y + box.height / 2;
  float x1 = cx - nw / 2, y1 = cy - nh / 2, x2 = cx + nw / 2, y2 = cy + nh / 2;
  if (x1 < 0) x2 -= x1, x1 = 0;
  if (y1 < 0) y2 -= y1, y1 = 0;
  if (x2 > w) x1 -= x2 - w, x2 = w;
  if (y2 > h) y1 -= y2 - h, y2 = h;
  cv::Rect r(cvRound(std::max(x1, 0.f)), cvRound(std::max(y1, 0.f)), cvRound(x2 - x1),
             cvRound(y2 - y1));
  r &= cv::Rect(0, 0, image.width, image.height);
  if (r.width < 2 || r.height < 2) return {};
  return r;
}

LivenessChecker::LivenessChecker(const ModelSet& models, LivenessOptions options)
    : net_(LoadNet(models.file("liveness"))), options_(options) {}

float LivenessChecker::Score(const cv::Mat& bgr, const cv::Rect2f& box) {
  // As in training (MiniFASNet-style): enlarge the box, but never beyond the image.
  const cv::Rect r = LivenessCrop(bgr.size(), box, options_.context_scale);
  if (r.empty()) return 0.f;
  std::vector<cv::Mat> crops{bgr(r)};
  if (options_.flip_tta) {
    cv::Mat flipped;
    cv::flip(bgr(r), flipped, 1);
    crops.push_back(flipped);
  }
  float live = 0;
  for (auto& crop : crops) {  // the network's batch size is fixed at 1
    net_.setInput(cv::dnn::blobFromImage(crop, 1.0, cv::Size(128, 128), cv::Scalar(),
                                         /*swapRB=*/options_.rgb_input));
    cv::Mat out = net_.forward();
    live += Softmax(out.ptr<float>(), static_cast<int>(out.total()))[0];
  }
  live /= static_cast<float>(crops.size());
  if (options_.texture_weight == 0) return live;
  return FuseTextureCue(live, TextureHighFrequencyLog(bgr, box, options_.texture), options_);
}

float FuseTextureCue(float p, float cue, const LivenessOptions& o) {
  if (o.texture_weight == 0 || std::isnan(cue)) return p;
  // Clamped as in FuseLiveness: a saturated probability counts as very sure, not infinitely.
  const double q = std::clamp(static_cast<double>(p), 1e-7, 1 - 1e-7);
  const double z = std::log(q / (1 - q)) + double(o.texture_weight) * (cue - o.texture_center);
  return static_cast<float>(1 / (1 + std::exp(-z)));
}

}  // namespace anju::vision
