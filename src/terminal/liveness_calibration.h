// Per-device liveness threshold (R3.1.2.4): a terminal raises its own threshold toward
// what its camera gives live residents.
//
// The shipped threshold is set low because live faces from unseen cameras spread far down
// (BENCHMARKS.md "Liveness"); most cameras give residents far higher scores, and there a
// higher threshold costs nobody anything and stops more attacks. The calibrator keeps the
// fused live scores of the device's recent approaches that the 1:N search recognised as a
// resident — admitted or refused as a spoof alike, so the sample is not cut off by the
// threshold it sets — and proposes
//
//   threshold = clamp(sigmoid(logit(Q_q) − margin), floor, max_threshold)
//
// where Q_q is the q-quantile of those scores (q = the BPCER the device may cost), the
// margin is in log-odds, and the floor is the configured `liveness_threshold`: calibration
// only ever makes the device stricter than configured, never more lenient, so photos of a
// resident shown to the camera (which land in the sample too) can at worst pull it back
// down to the configured floor. Scores are stored (a float per approach, no identity, no
// image) in a small JSON file so that a restart keeps what the device has learnt.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>

namespace anju::terminal {

struct LivenessCalibrationOptions {
  bool enabled = false;
  int window = 500;            // most recent recognised approaches kept
  int min_samples = 200;       // the floor applies until the device has seen this many
  double quantile = 0.01;      // share of the device's recognised approaches left below
  float margin = 1.0f;         // log-odds kept between that quantile and the threshold
  float max_threshold = 0.5f;  // never stricter than this

  // The "liveness_calibration" object of the pipeline options: every field optional;
  // unknown keys and bad values throw Error(kInvalidArgument) naming the key.
  static LivenessCalibrationOptions FromJson(const nlohmann::json& j);
  nlohmann::json ToJson() const;
};

// The q-quantile (order statistic floor(q·n), 0-based, of the sorted scores); 0 when empty.
float LowerQuantile(std::deque<float> scores, double q);

class LivenessCalibrator {
 public:
  // FLOOR: the configured threshold. FILE (optional): where the scores persist; a missing
  // file starts empty, an unreadable or malformed one is logged and ignored (the device
  // starts from the floor again, nothing else depends on it).
  LivenessCalibrator(LivenessCalibrationOptions options, float floor,
                     std::filesystem::path file = {});
  ~LivenessCalibrator();  // saves
  LivenessCalibrator(const LivenessCalibrator&) = delete;
  LivenessCalibrator& operator=(const LivenessCalibrator&) = delete;

  // The fused live score of an approach recognised as a resident. Thread-safe.
  void Add(float score);
  // The threshold in effect now. Thread-safe.
  float threshold() const;
  size_t samples() const;
  float floor() const { return floor_; }
  const LivenessCalibrationOptions& options() const { return options_; }
  // Writes the file now (atomically: temporary file + rename); false when it could not.
  bool Save() const;

 private:
  float Compute() const;  // with mu_ held

  LivenessCalibrationOptions options_;
  float floor_;
  std::filesystem::path file_;
  mutable std::mutex mu_;
  std::deque<float> scores_;
  float threshold_;
  mutable int unsaved_ = 0;  // approaches added since the last write
};

}  // namespace anju::terminal
