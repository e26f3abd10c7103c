#include "server/enrolment/face_gate.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/paths.h"
#include "vision/image.h"
#include "vision/model_set.h"

namespace anju::server {

namespace {

struct ReasonText {
  const char* code;
  const char* zh;
  const char* en;
};

// Same wording as the console's enrolment page.
constexpr ReasonText kReasons[] = {
    {"no_face", "未检测到人脸", "No face found"},
    {"several_faces", "画面中有多张人脸", "Several faces in the picture"},
    {"too_small", "人脸太小，请靠近", "Face too small: come closer"},
    {"blurred", "照片模糊", "Blurred"},
    {"too_dark", "光线太暗", "Too dark"},
    {"too_bright", "光线太亮", "Too bright"},
    {"not_frontal", "请正对镜头", "Look straight at the camera"},
    {"eyes_closed", "请睁开眼睛", "Eyes closed"},
    {"spoof", "疑似翻拍或打印照片", "Looks like a printed or re-photographed picture"},
};

}  // namespace

nlohmann::json ReasonsJson(const std::vector<std::string>& codes) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& c : codes) {
    nlohmann::json r = {{"code", c}, {"message_zh", c}, {"message_en", c}};
    for (const auto& t : kReasons)
      if (c == t.code) r["message_zh"] = t.zh, r["message_en"] = t.en;
    out.push_back(r);
  }
  return out;
}

nlohmann::json GateResult::ToJson() const {
  nlohmann::json bbox;  // null without a face
  if (box.area() > 0)
    bbox = {{"x", box.x}, {"y", box.y}, {"width", box.width}, {"height", box.height}};
  return {{"reasons", reasons},
          {"faces", faces},
          {"bbox", bbox},
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

GateResult FaceGate::Assess(std::span<const uint8_t> bytes, const AssessOptions& options) {
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
  r.box = face.det.box;
  r.quality = engine_->AssessQuality(image, face);
  for (auto& p : vision::QualityProblems(r.quality, policy_.quality)) r.reasons.push_back(p);
  if (policy_.check_liveness && options.liveness) {
    r.liveness = engine_->Liveness(image, face);
    if (r.liveness < policy_.liveness_threshold) r.reasons.push_back("spoof");
  }
  if (r.reasons.empty() || options.embed_always) r.feature = engine_->Embed(face);
  return r;
}

}  // namespace anju::server
