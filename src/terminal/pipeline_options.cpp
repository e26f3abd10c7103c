// PipelineOptions <-> the "pipeline" object of the terminal config file.
#include <set>

#include "core/error.h"
#include "terminal/access_pipeline.h"

namespace anju::terminal {
namespace {

[[noreturn]] void Bad(const std::string& key, const std::string& why) {
  throw Error(ErrorCode::kInvalidArgument, "配置无效 / bad pipeline option '" + key + "': " + why);
}

template <typename T>
T Number(const nlohmann::json& j, const std::string& key, double lo, double hi) {
  const auto& v = j.at(key);
  if constexpr (std::is_integral_v<T>) {
    if (!v.is_number_integer()) Bad(key, "must be an integer, got " + v.dump());
  } else {
    if (!v.is_number()) Bad(key, "must be a number, got " + v.dump());
  }
  const double d = v.get<double>();
  if (d < lo || d > hi)
    Bad(key,
        v.dump() + " is outside " + nlohmann::json(lo).dump() + " … " + nlohmann::json(hi).dump());
  return static_cast<T>(v.get<double>());
}

std::chrono::milliseconds Ms(const nlohmann::json& j, const std::string& key, double hi) {
  return std::chrono::milliseconds(Number<int64_t>(j, key, 0, hi));
}

}  // namespace

const char* MaskPolicyName(MaskPolicy p) {
  switch (p) {
    case MaskPolicy::kIgnore:
      return "ignore";
    case MaskPolicy::kStricter:
      return "stricter";
    case MaskPolicy::kAskRemove:
      return "ask_remove";
  }
  return "unknown";
}

MaskPolicy ParseMaskPolicy(std::string_view s) {
  if (s == "ignore") return MaskPolicy::kIgnore;
  if (s == "stricter") return MaskPolicy::kStricter;
  if (s == "ask_remove") return MaskPolicy::kAskRemove;
  throw Error(ErrorCode::kInvalidArgument, "口罩策略无效 / unknown mask policy '" + std::string(s) +
                                               "' (ignore, stricter, ask_remove)");
}

PipelineOptions PipelineOptions::FromJson(const nlohmann::json& j) {
  PipelineOptions o;
  if (j.is_null()) return o;
  if (!j.is_object()) Bad("pipeline", "must be a JSON object");
  static const std::set<std::string> kKeys = {"terminal_id",
                                              "door",
                                              "level",
                                              "decision_budget_ms",
                                              "fuse_frames",
                                              "max_fuse_frames",
                                              "min_quality",
                                              "min_face_px",
                                              "liveness_threshold",
                                              "liveness_fusion",
                                              "liveness_calibration",
                                              "ir_mode",
                                              "ir_threshold",
                                              "ir_max_skew_ms",
                                              "ir_map",
                                              "default_open_ms",
                                              "motion_gate",
                                              "idle_fps",
                                              "mask_policy",
                                              "mask_threshold_delta",
                                              "mask_score_threshold",
                                              "tailgating_grace_ms",
                                              "repeat_suppression_ms",
                                              "search_threads",
                                              "jpeg_quality"};
  for (const auto& [key, value] : j.items())
    if (!kKeys.count(key)) Bad(key, "unknown key (typo?)");
  auto has = [&](const char* k) { return j.contains(k); };
  try {
    if (has("terminal_id")) {
      if (!j["terminal_id"].is_string()) Bad("terminal_id", "must be a string");
      o.terminal_id = j["terminal_id"].get<std::string>();
    }
    if (has("door")) o.door = Number<int>(j, "door", 0, 255);
    if (has("level")) {
      if (!j["level"].is_string()) Bad("level", "must be \"high\", \"normal\" or \"low\"");
      try {
        o.level = match::ParseLevel(j["level"].get<std::string>());
      } catch (const Error& e) {
        Bad("level", e.what());
      }
    }
    if (has("decision_budget_ms")) o.decision_budget = Ms(j, "decision_budget_ms", 10'000);
    if (has("fuse_frames")) o.fuse_frames = Number<int>(j, "fuse_frames", 1, 32);
    if (has("max_fuse_frames")) o.max_fuse_frames = Number<int>(j, "max_fuse_frames", 1, 64);
    if (has("min_quality")) o.min_quality = Number<float>(j, "min_quality", 0, 1);
    if (has("min_face_px")) o.min_face_px = Number<float>(j, "min_face_px", 0, 4096);
    if (has("liveness_threshold"))
      o.liveness_threshold = Number<float>(j, "liveness_threshold", 0, 1);
    if (has("liveness_fusion")) {
      if (!j["liveness_fusion"].is_string()) Bad("liveness_fusion", "must be a string");
      try {
        o.liveness_fusion = vision::ParseLivenessFusion(j["liveness_fusion"].get<std::string>());
      } catch (const Error& e) {
        Bad("liveness_fusion", e.what());
      }
    }
    if (has("liveness_calibration"))
      o.liveness_calibration = LivenessCalibrationOptions::FromJson(j["liveness_calibration"]);
    if (has("ir_mode")) {
      const auto& m = j["ir_mode"];
      if (!m.is_string() || (m != "off" && m != "require"))
        Bad("ir_mode", "must be \"off\" or \"require\", got " + m.dump());
      o.ir_required = m == "require";
    }
    if (has("ir_threshold")) o.ir_threshold = Number<float>(j, "ir_threshold", 0, 1);
    if (has("ir_max_skew_ms")) o.ir_max_skew = Ms(j, "ir_max_skew_ms", 5'000);
    if (has("ir_map")) {
      const auto& m = j["ir_map"];
      if (!m.is_array() || m.size() != 6)
        Bad("ir_map",
            "must be 6 numbers [a, b, c, d, e, f]: x' = a·x + b·y + c, y' = d·x + e·y + f");
      for (size_t k = 0; k < 6; ++k) {
        if (!m[k].is_number()) Bad("ir_map", "element " + std::to_string(k) + " is not a number");
        o.ir_check.map[k] = m[k].get<float>();
      }
    }
    if (has("default_open_ms")) o.default_open = Ms(j, "default_open_ms", 600'000);
    if (has("motion_gate")) {
      if (!j["motion_gate"].is_boolean()) Bad("motion_gate", "must be true or false");
      o.motion_gate = j["motion_gate"].get<bool>();
    }
    if (has("idle_fps")) o.idle_fps = Number<float>(j, "idle_fps", 0, 1000);
    if (has("mask_policy")) {
      if (!j["mask_policy"].is_string()) Bad("mask_policy", "must be a string");
      o.mask_policy = ParseMaskPolicy(j["mask_policy"].get<std::string>());
    }
    if (has("mask_threshold_delta"))
      o.mask_threshold_delta = Number<float>(j, "mask_threshold_delta", 0, 1);
    if (has("mask_score_threshold"))
      o.mask_score_threshold = Number<float>(j, "mask_score_threshold", 0, 1);
    if (has("tailgating_grace_ms")) o.tailgating_grace = Ms(j, "tailgating_grace_ms", 600'000);
    if (has("repeat_suppression_ms"))
      o.repeat_suppression = Ms(j, "repeat_suppression_ms", 3'600'000);
    if (has("search_threads")) o.search_threads = Number<int>(j, "search_threads", 1, 64);
    if (has("jpeg_quality")) o.jpeg_quality = Number<int>(j, "jpeg_quality", 10, 100);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kInvalidArgument) throw;
    throw Error(ErrorCode::kInvalidArgument,
                std::string("配置无效 / bad pipeline options: ") + e.what());
  }
  if (o.max_fuse_frames < o.fuse_frames) Bad("max_fuse_frames", "must be ≥ fuse_frames");
  return o;
}

nlohmann::json PipelineOptions::ToJson() const {
  return {{"terminal_id", terminal_id},
          {"door", door},
          {"level", match::LevelName(level)},
          {"decision_budget_ms", decision_budget.count()},
          {"fuse_frames", fuse_frames},
          {"max_fuse_frames", max_fuse_frames},
          {"min_quality", min_quality},
          {"min_face_px", min_face_px},
          {"liveness_threshold", liveness_threshold},
          {"liveness_fusion", vision::LivenessFusionName(liveness_fusion)},
          {"liveness_calibration", liveness_calibration.ToJson()},
          {"ir_mode", ir_required ? "require" : "off"},
          {"ir_threshold", ir_threshold},
          {"ir_max_skew_ms", ir_max_skew.count()},
          {"ir_map", ir_check.map},
          {"default_open_ms", default_open.count()},
          {"motion_gate", motion_gate},
          {"idle_fps", idle_fps},
          {"mask_policy", MaskPolicyName(mask_policy)},
          {"mask_threshold_delta", mask_threshold_delta},
          {"mask_score_threshold", mask_score_threshold},
          {"tailgating_grace_ms", tailgating_grace.count()},
          {"repeat_suppression_ms", repeat_suppression.count()},
          {"search_threads", search_threads},
          {"jpeg_quality", jpeg_quality}};
}

}  // namespace anju::terminal
