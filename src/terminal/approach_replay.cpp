#include "terminal/approach_replay.h"

#include "core/error.h"
#include "door/logging_controller.h"
#include "match/index.h"

namespace anju::terminal {

ApproachResult ReplayApproach(vision::FaceEngine& engine, const std::vector<cv::Mat>& frames,
                              PipelineOptions options, double fps,
                              const std::vector<cv::Mat>& ir_frames) {
  if (fps <= 0) throw Error(ErrorCode::kInvalidArgument, "fps must be > 0");
  if (!ir_frames.empty() && ir_frames.size() != frames.size())
    throw Error(ErrorCode::kInvalidArgument, "IR frames must pair one to one with colour frames");
  const std::string version = engine.model_version();
  // One enrolled person and thresholds below every cosine score: identity always accepts.
  match::FeatureIndex index({.model_version = version});
  std::vector<float> unit(index.options().dim, 0.f);
  unit[0] = 1.f;
  index.Add("approach", unit, version);
  match::Thresholds thresholds;
  thresholds.model_version = version;
  for (auto& level : thresholds.levels) level = {.threshold = -2.f, .margin = 0.f};

  options.motion_gate = false;
  options.tailgating_grace = std::chrono::milliseconds(0);
  options.repeat_suppression = std::chrono::milliseconds(0);
  door::LoggingDoorController door(std::max(1, options.door + 1));

  std::vector<nlohmann::json> records;
  AccessPipeline pipeline(
      options, engine, index, thresholds,
      [](const std::string& p) -> std::optional<PersonRules> {
        PersonRules r;
        r.person = p;
        return r;
      },
      door,
      [&](std::string_view kind, const nlohmann::json& rec, std::vector<uint8_t>) {
        if (kind == "access") records.push_back(rec);
      });
  const auto origin = video::Clock::time_point{} + std::chrono::hours(1);
  const auto step =
      std::chrono::duration_cast<video::Clock::duration>(std::chrono::duration<double>(1.0 / fps));
  for (size_t i = 0; i < frames.size(); ++i) {
    const auto t = origin + step * static_cast<int64_t>(i);
    if (!ir_frames.empty()) pipeline.OnIrFrame({ir_frames[i], t, i});
    pipeline.OnFrame({frames[i], t, i});
  }
  pipeline.Flush();
  ApproachResult out;
  out.tracks = static_cast<int>(records.size());
  // The first admission decides the approach; failing that, the first refusal.
  for (const char* wanted : {"open", "spoof"}) {
    for (const auto& rec : records) {
      if (rec.value("decision", "") != wanted) continue;
      out.decision = wanted;
      out.reason = rec.value("reason", "");
      out.liveness = rec.value("liveness", 0.f);
      out.frames_used = rec.value("frames", 0);
      return out;
    }
  }
  return out;
}

}  // namespace anju::terminal
