// The enrolment quality gate (R3.3.2.2): one uploaded photo → either
// a feature code or the reasons it is refused, in machine-readable words:
// no_face, several_faces, too_small, blurred, too_dark, too_bright, not_frontal,
// eyes_closed, spoof. One engine behind a mutex: enrolment is an administrator's action,
// not a hot path, and a second engine would double the memory.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "vision/engine.h"
#include "vision/quality.h"

namespace anju::server {

struct GatePolicy {
  vision::QualityPolicy quality;
  // The engine's own default unless the config sets `liveness_threshold`: the network's
  // scores are those the terminal judges (prints ≈ 1e-5, live faces from unseen cameras
  // down to ≈ 1e-2), so a fixed 0.5 here refused many live photos (docs/liveness.md).
  float liveness_threshold = vision::LivenessOptions{}.threshold;
  bool check_liveness = true;
  // A second face at least this fraction of the largest face's area makes the photo
  // ambiguous (whose face is enrolled?).
  float second_face_area = 0.25f;
};

struct GateResult {
  std::vector<std::string> reasons;  // empty = accepted
  vision::Quality quality;
  float liveness = -1;
  int faces = 0;
  cv::Rect2f box;           // the largest face (empty when none)
  vision::Feature feature;  // set when accepted (or always, with AssessOptions::embed_always)
  nlohmann::json ToJson() const;
};

// How much of the gate to run. Enrolment runs all of it; the archive search by photo needs
// only the largest face's feature (whatever its quality), not the liveness model.
struct AssessOptions {
  bool embed_always = false;
  bool liveness = true;
};

// The reasons as [{code, message_zh, message_en}] for people (console, API clients).
nlohmann::json ReasonsJson(const std::vector<std::string>& codes);

class FaceGate {
 public:
  // The engine is opened on first use (a few hundred ms), so a server that never enrols
  // does not pay for it.
  FaceGate(std::filesystem::path model_dir, GatePolicy policy);
  // Throws Error(kBadImage) for bytes that are not an image, Error(kModel) when the
  // models are missing.
  GateResult Assess(std::span<const uint8_t> image_bytes, const AssessOptions& options = {});
  // Feature version of the installed models, "" when none are installed.
  const std::string& model_version() const { return model_version_; }

 private:
  std::filesystem::path model_dir_;
  GatePolicy policy_;
  std::string model_version_;
  std::mutex mu_;
  std::unique_ptr<vision::FaceEngine> engine_;
};

}  // namespace anju::server
