#include "terminal/liveness_calibration.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"

namespace anju::terminal {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

[[noreturn]] void Bad(const std::string& key, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, "配置无效 / bad pipeline option 'liveness_calibration" +
                                               (key.empty() ? "" : "." + key) + "': " + why);
}

double Num(const json& j, const char* key, double lo, double hi, bool integer) {
  const json& v = j.at(key);
  if (integer ? !v.is_number_integer() : !v.is_number())
    Bad(key,
        std::string(integer ? "must be an integer" : "must be a number") + ", got " + v.dump());
  const double d = v.get<double>();
  if (d < lo || d > hi)
    Bad(key, v.dump() + " is outside " + json(lo).dump() + " … " + json(hi).dump());
  return d;
}

constexpr int kSaveEvery = 10;  // approaches between writes of the score file

}  // namespace

LivenessCalibrationOptions LivenessCalibrationOptions::FromJson(const json& j) {
  LivenessCalibrationOptions o;
  if (j.is_null()) return o;
  if (!j.is_object()) Bad("", "must be a JSON object");
  static const std::set<std::string> kKeys = {"enabled",  "window", "min_samples",
                                              "quantile", "margin", "max_threshold"};
  for (const auto& [k, v] : j.items())
    if (!kKeys.count(k)) Bad(k, "unknown key (typo?)");
  if (j.contains("enabled")) {
    if (!j["enabled"].is_boolean()) Bad("enabled", "must be true or false");
    o.enabled = j["enabled"].get<bool>();
  }
  if (j.contains("window")) o.window = int(Num(j, "window", 10, 100000, true));
  if (j.contains("min_samples")) o.min_samples = int(Num(j, "min_samples", 1, 100000, true));
  if (j.contains("quantile")) o.quantile = Num(j, "quantile", 0, 0.5, false);
  if (j.contains("margin")) o.margin = float(Num(j, "margin", 0, 20, false));
  if (j.contains("max_threshold")) o.max_threshold = float(Num(j, "max_threshold", 0, 1, false));
  if (o.min_samples > o.window) Bad("min_samples", "must be ≤ window");
  return o;
}

json LivenessCalibrationOptions::ToJson() const {
  return {{"enabled", enabled},   {"window", window}, {"min_samples", min_samples},
          {"quantile", quantile}, {"margin", margin}, {"max_threshold", max_threshold}};
}

float LowerQuantile(std::deque<float> v, double q) {
  if (v.empty()) return 0.f;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(std::floor(q * double(v.size()))));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

LivenessCalibrator::LivenessCalibrator(LivenessCalibrationOptions options, float floor,
                                       fs::path file)
    : options_(options), floor_(floor), file_(std::move(file)), threshold_(floor) {
  if (file_.empty() || !fs::exists(file_)) return;
  try {
    std::ifstream in(file_);
    const json j = json::parse(in);
    for (const auto& s : j.at("scores")) {
      const float x = s.get<float>();
      if (!(x >= 0.f && x <= 1.f)) throw std::runtime_error("score out of range");
      scores_.push_back(x);
    }
    while (scores_.size() > size_t(options_.window)) scores_.pop_front();
    threshold_ = Compute();
    spdlog::info("活体阈值校准 / liveness calibration: {} approaches from {}, threshold {:.4f}",
                 scores_.size(), file_.string(), threshold_);
  } catch (const std::exception& e) {
    scores_.clear();
    threshold_ = floor_;
    spdlog::warn("活体校准文件无效，从头开始 / ignoring liveness calibration file {}: {}",
                 file_.string(), e.what());
  }
}

LivenessCalibrator::~LivenessCalibrator() {
  Save();
}

float LivenessCalibrator::Compute() const {
  if (!options_.enabled || scores_.size() < size_t(std::max(1, options_.min_samples)))
    return floor_;
  const double q = std::clamp(double(LowerQuantile(scores_, options_.quantile)), 1e-7, 1 - 1e-7);
  const double t = 1 / (1 + std::exp(-(std::log(q / (1 - q)) - options_.margin)));
  return std::clamp(static_cast<float>(t), floor_, std::max(floor_, options_.max_threshold));
}

void LivenessCalibrator::Add(float score) {
  if (!options_.enabled || !(score >= 0.f && score <= 1.f)) return;
  bool save = false;
  {
    std::lock_guard lock(mu_);
    scores_.push_back(score);
    while (scores_.size() > size_t(options_.window)) scores_.pop_front();
    const float before = threshold_;
    threshold_ = Compute();
    if (threshold_ != before)
      spdlog::info("活体阈值 / liveness threshold {:.4f} → {:.4f} ({} approaches)", before,
                   threshold_, scores_.size());
    save = ++unsaved_ >= kSaveEvery;
  }
  if (save) Save();
}

float LivenessCalibrator::threshold() const {
  std::lock_guard lock(mu_);
  return threshold_;
}

size_t LivenessCalibrator::samples() const {
  std::lock_guard lock(mu_);
  return scores_.size();
}

bool LivenessCalibrator::Save() const {
  if (file_.empty()) return true;
  std::string text;
  {
    std::lock_guard lock(mu_);
    if (unsaved_ == 0 && fs::exists(file_)) return true;
    text = json{{"format", 1}, {"threshold", threshold_}, {"scores", scores_}}.dump();
  }
  fs::path tmp = file_;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    out.flush();
    if (!out) {
      spdlog::warn("活体校准无法保存 / cannot write {}", tmp.string());
      return false;
    }
  }
  std::error_code ec;
  fs::rename(tmp, file_, ec);
  if (ec) {
    spdlog::warn("活体校准无法保存 / cannot replace {}: {}", file_.string(), ec.message());
    return false;
  }
  std::lock_guard lock(mu_);
  unsaved_ = 0;
  return true;
}

}  // namespace anju::terminal
