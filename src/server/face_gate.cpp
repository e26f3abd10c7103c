#include "server/face_gate.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/paths.h"
#include "vision/image.h"
#include "vision/model_set.h"

namespace anju::server {

nlohmann::json GateResult::ToJson() const {
  return {{"reasons", reasons},
          {"faces", faces},
          {"liveness", liveness},
          {"quality",
           {{"score", quality.score},
            {"face_size", quality.face_size},
            {"inter_pupil", quality.inter_pupil},
            {"sharpness", quality.sharpness},
            {"brightness", quality.brightness},
            {"yaw", quality.pose.yaw},
            {"pitch", quality.pose.pitch},
            {"roll", quality.pose.roll},
            {"eyes_open", quality.eyes_open}}}};
}

FaceGate::FaceGate(std::filesystem::path model_dir, GatePolicy policy)
    : model_dir_(model_dir.empty() ? DefaultModelDir() : std::move(model_dir)), policy_(policy) {
  try {
    model_version_ = vision::ModelSet::Load(model_dir_, false)->feature_version();
  } catch (const Error&) {
    model_version_.clear();  // no models: the server runs, enrolment answers 503
  }
}

GateResult FaceGate::Assess(std::span<const uint8_t> bytes) {
  const cv::Mat image = vision::DecodeImage(bytes);
  std::lock_guard lock(mu_);
  if (!engine_) {
    vision::EngineOptions options;
    options.liveness.threshold = policy_.liveness_threshold;
    engine_ = vision::FaceEngine::Open(model_dir_, options);
  }
  GateResult r;
  const auto faces = engine_->Detect(image);
  if (faces.empty()) {
    r.reasons.push_back("no_face");
    return r;
  }
  size_t largest = 0;
  for (size_t i = 1; i < faces.size(); ++i)
    if (faces[i].det.box.area() > faces[largest].det.box.area()) largest = i;
  const float big = faces[largest].det.box.area();
  for (const auto& f : faces)
    if (f.det.box.area() >= policy_.second_face_area * big) ++r.faces;
  if (r.faces > 1) r.reasons.push_back("several_faces");
  const auto& face = faces[largest];
  r.quality = engine_->AssessQuality(image, face);
  for (auto& p : vision::QualityProblems(r.quality, policy_.quality)) r.reasons.push_back(p);
  if (policy_.check_liveness) {
    r.liveness = engine_->Liveness(image, face);
    if (r.liveness < policy_.liveness_threshold) r.reasons.push_back("spoof");
  }
  if (r.reasons.empty()) r.feature = engine_->Embed(face);
  return r;
}

}  // namespace anju::server
