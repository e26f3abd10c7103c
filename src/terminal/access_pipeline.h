// AccessPipeline: the terminal's recognition loop ("Recognition loop").
//
//   frame ─▶ motion gate ─▶ detect ─▶ track ─▶ quality ─▶ liveness + embed (+ mask test)
//         ─▶ per-track fusion of several good frames ─▶ 1:N (index.Search + match::Decide)
//         ─▶ rules (RulesLookup + Authorise) ─▶ door.Open / records / alarms / display
//
// One decision per track (one person, one approach), never per frame. While the door is
// open after an admission, distinct people seen beyond those admitted raise a tailgating
// alarm (R3.2.2.2). See docs/terminal.md.
//
// What the pipeline touches, and nothing else:
//  * the FeatureIndex, read-only (another thread may update it at any time: FeatureIndex
//    makes every update atomic for searches, so a removal applies to the next decision);
//  * rules only through RulesLookup;
//  * records only through RecordSink (kind "access" or "alarm", payload as in
//    docs/device-protocol.md "Uploading records", JPEG snapshot or empty);
//  * the door only through door::DoorController::Open.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "door/controller.h"
#include "match/index.h"
#include "match/thresholds.h"
#include "terminal/liveness_calibration.h"
#include "terminal/person_rules.h"
#include "video/frame_source.h"
#include "vision/engine.h"
#include "vision/ir_check.h"

namespace anju::terminal {

// The terminal's local state: a person's rules, nullopt = not in the gallery (any more).
// Called from the pipeline thread; must be thread-safe against the sync thread.
using RulesLookup = std::function<std::optional<PersonRules>(const std::string& person)>;
// Every record the pipeline produces. Must not throw (exceptions are caught, logged and
// counted in Stats::sink_failures, but the record is then lost).
using RecordSink = std::function<void(std::string_view kind, const nlohmann::json& payload,
                                      std::vector<uint8_t> jpeg)>;

// Wearing a mask or covering the lower face (R2.1.5.1).
enum class MaskPolicy {
  kIgnore,    // no mask test; match as usual
  kStricter,  // match masked faces with threshold + mask_threshold_delta
  kAskRemove  // masked frames are not matched; display "mask_off" until it comes off
};
const char* MaskPolicyName(MaskPolicy p);  // "ignore" / "stricter" / "ask_remove"
MaskPolicy ParseMaskPolicy(std::string_view s);

struct PipelineOptions {
  std::string terminal_id;  // goes into every record ("terminal")
  int door = 0;             // the door this camera guards
  match::SecurityLevel level = match::SecurityLevel::kNormal;
  // A track is decided when `fuse_frames` good frames have been fused and they give an
  // accept, or else when `decision_budget` has passed since its first good frame (or the
  // track ends): more frames for the hard cases, no wait for the easy one.
  std::chrono::milliseconds decision_budget{600};
  int fuse_frames = 2;
  int max_fuse_frames = 8;  // frames kept per track (the best by quality)
  // The per-frame gate (vision::FrameGate, whose defaults these are): quality score below
  // min_quality, or a face box smaller than min_face_px (too far away): frame not used.
  float min_quality = vision::FrameGate{}.min_quality;
  float min_face_px = vision::FrameGate{}.min_face_px;
  vision::FrameGate gate() const { return {min_face_px, min_quality}; }
  // Liveness of an approach (R3.1.2.4): the live probabilities of its fused frames are
  // combined by `liveness_fusion` and compared with `liveness_threshold` (how both were
  // chosen: BENCHMARKS.md "Liveness"; the default is vision::LivenessOptions{}.threshold).
  float liveness_threshold = vision::LivenessOptions{}.threshold;
  vision::LivenessFusion liveness_fusion = vision::LivenessFusion::kLogitMean;
  // Per-device calibration: the threshold rises toward what this camera gives residents
  // (terminal/liveness_calibration.h), never below liveness_threshold.
  LivenessCalibrationOptions liveness_calibration;
  // Where the calibrator keeps its scores (set by Terminal to <data_dir>/
  // liveness-calibration.json; not a config key). Empty = in memory only.
  std::filesystem::path liveness_calibration_file;
  // Infrared camera (vision/ir_check.h): "require" = an approach is live only if the IR
  // frames paired with its samples show a face where the colour camera saw one (mean
  // detector score ≥ ir_threshold); an approach with no paired IR frame at all is refused
  // (fail closed: reason "ir_missing"). IR frames come through AccessPipeline::OnIrFrame.
  bool ir_required = false;  // config "ir_mode": "off" | "require"
  float ir_threshold = 0.5f;
  std::chrono::milliseconds ir_max_skew{150};  // |IR capture − colour capture| to pair
  vision::IrCheckOptions ir_check;             // config "ir_map": [a, b, c, d, e, f]
  std::chrono::milliseconds default_open{3000};
  // Motion gate (R3.2.3.2): while nothing moves (and no track or door window is open),
  // frames are only differenced on a 160-px grey copy and the face pipeline sleeps.
  // idle_fps > 0 differences only that many frames a second while asleep (less CPU, but
  // someone arriving may wait up to 1/idle_fps before the pipeline wakes); 0 = every frame.
  bool motion_gate = true;
  float idle_fps = 0.f;
  MaskPolicy mask_policy = MaskPolicy::kStricter;
  float mask_threshold_delta = 0.05f;
  float mask_score_threshold = 0.5f;  // per-frame mask score at or above = masked
  // After an admission, the door window lasts the open time plus this grace; people
  // seen in it beyond those admitted are tailgaters. 0 disables the check.
  std::chrono::milliseconds tailgating_grace{2000};
  // The same person recognised again within this time (a track that broke up) is not a
  // new approach: no second record or door command.
  std::chrono::milliseconds repeat_suppression{5000};
  int search_threads = 1;
  int jpeg_quality = 85;

  // The "pipeline" object of the terminal config file: every field optional, durations
  // as *_ms integers, level/mask_policy as names. Unknown keys and bad values throw
  // anju::Error(kInvalidArgument) naming the key.
  static PipelineOptions FromJson(const nlohmann::json& j);
  nlohmann::json ToJson() const;
};

// What the status page shows about the last decision.
struct DisplayResult {
  uint64_t seq = 0;     // 0 = nothing decided yet; increases with every new result
  int64_t time_ms = 0;  // Unix ms
  int door = 0;
  std::string result;        // "open", "deny", "stranger", "spoof", "uncertain", "mask_off"
  std::string display_name;  // masked name, only for known people
  std::string message_zh;    // "请通行", "未识别", …
  std::string message_en;    // "Please pass", "Not recognised", …
  std::string reason;        // machine-readable, e.g. "outside_hours"
};

class AccessPipeline {
 public:
  struct Stats {
    uint64_t frames = 0;     // OnFrame calls
    uint64_t processed = 0;  // frames that ran the face pipeline (awake)
    uint64_t idle = 0;       // frames seen by the motion gate only, or skipped while idle
    uint64_t tracks = 0;     // confirmed tracks
    uint64_t undecided = 0;  // tracks that ended without a usable frame
    std::map<std::string, uint64_t> decisions;  // by result: open, deny, stranger, …
    uint64_t tailgating_alarms = 0;
    uint64_t door_failures = 0;
    uint64_t sink_failures = 0;
    // Frame captured (Frame::captured of the frame that completed the decision) → the
    // door.Open call, admitted people only.
    double latency_p50_ms = 0, latency_p95_ms = 0, latency_max_ms = 0;
    // First frame of the track → door.Open (includes waiting for the frames fused).
    double approach_p50_ms = 0, approach_p95_ms = 0;
    // Processed frames per second of pipeline time while awake, and mean time per
    // processed / idle frame.
    double fps = 0, busy_ms_per_frame = 0, idle_ms_per_frame = 0;
    // Mean ms per call: detect (per frame), quality, liveness, mask, embed, ir (per face),
    // search (per decision).
    std::map<std::string, double> stage_ms;
    // The liveness threshold in effect (calibrated or configured) and the approaches the
    // calibration has seen.
    float liveness_threshold = 0;
    uint64_t liveness_calibration_samples = 0;
    nlohmann::json ToJson() const;
  };

  AccessPipeline(PipelineOptions options, vision::FaceEngine& engine,
                 const match::FeatureIndex& index, match::Thresholds thresholds, RulesLookup rules,
                 door::DoorController& door, RecordSink sink);
  ~AccessPipeline();
  AccessPipeline(const AccessPipeline&) = delete;
  AccessPipeline& operator=(const AccessPipeline&) = delete;

  // The whole per-frame loop; call from one thread. The pipeline keeps a reference to
  // frame.image for snapshots (as video::FrameSource frames allow): do not write into it. A frame
  // that is not 8-bit BGR/grey/BGRA or is empty throws anju::Error(kBadImage) and leaves the state
  // untouched.
  void OnFrame(const video::Frame& frame);
  // The source ended: decide pending tracks, close the door window.
  void Flush();
  // A frame of the infrared camera (options().ir_required); any thread. Frames are paired
  // with colour frames by capture time (video::Frame::captured, same clock). Empty or
  // non-8-bit frames throw anju::Error(kBadImage).
  void OnIrFrame(const video::Frame& frame);

  DisplayResult last_result() const;  // any thread
  Stats stats() const;                // any thread
  const PipelineOptions& options() const;
  // The levels decisions use from the next one on (any thread): the site's levels the server
  // calibrated (docs/device-protocol.md, gallery "thresholds"; Terminal applies them).
  void SetThresholds(match::Thresholds thresholds);
  match::Thresholds thresholds() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace anju::terminal
