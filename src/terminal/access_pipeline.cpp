#include "terminal/access_pipeline.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <numeric>
#include <set>
#include <unordered_map>

#include "core/clock.h"
#include "core/error.h"
#include "terminal/mask.h"
#include "terminal/snapshot.h"
#include "video/face_tracker.h"
#include "video/motion_gate.h"

namespace anju::terminal {
namespace {

using video::Clock;
using SysClock = std::chrono::system_clock;

int64_t NowMs() {
  return anju::NowMs();  // the process clock (core/clock.h), which tests may replace
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = p * double(v.size() - 1);
  const size_t i = size_t(pos);
  const double f = pos - double(i);
  return i + 1 < v.size() ? v[i] * (1 - f) + v[i + 1] * f : v[i];
}

// One good frame of a track.
struct Sample {
  float quality = 0, live = 0, mask = 0;
  float ir = -1;  // IR face score when an IR frame was paired, −1 = none
  std::vector<float> feature;
  cv::Mat frame;  // the whole frame (shared with the source, never written)
  cv::Rect2f box;
  Clock::time_point captured;
};

// Frames a track must be seen in before it is a person: a detection in one frame only
// (a poster, a reflection, detector flicker) is neither decided nor counted.
constexpr int kMinHits = 2;

struct TrackState {
  int id = 0;
  int hits = 0;
  Clock::time_point first_seen;
  std::optional<Clock::time_point> first_good;
  std::vector<Sample> samples;
  bool decided = false;
  bool admitted = false;
  std::string result;  // once decided
  bool mask_prompted = false;
  // Last frame and box the track was seen in (snapshot for tracks without a sample).
  cv::Mat last_frame;
  cv::Rect2f last_box;
};

// What the fused frames say.
struct Verdict {
  bool live = false;
  std::string spoof_reason;  // when !live: "" (colour liveness), "ir_no_face", "ir_missing"
  float liveness = 0, quality = 0, mask = 0;
  bool masked = false;
  match::Decision decision;
  float threshold = 0;
};

// After an admission: the people who may pass, and everyone seen while the door is open.
struct DoorWindow {
  bool active = false;
  Clock::time_point until;
  std::set<int> admitted;  // track ids admitted (or recognised again) in this window
  std::set<int> seen;      // confirmed track ids seen while the window was open
  bool alarmed = false;
  cv::Mat evidence;  // latest frame showing a person not admitted
};

}  // namespace

struct AccessPipeline::Impl {
  PipelineOptions options;
  vision::FaceEngine& engine;
  const match::FeatureIndex& index;
  mutable std::mutex thresholds_mu;  // thresholds may be replaced by the sync thread
  match::Thresholds thresholds;
  RulesLookup rules;
  door::DoorController& door;
  RecordSink sink;

  video::MotionGate gate;
  video::FaceTracker tracker;
  cv::Size last_size;
  Clock::time_point last_idle_check{};
  bool have_idle_check = false;
  std::unordered_map<int, TrackState> tracks;
  DoorWindow window;
  std::unordered_map<std::string, Clock::time_point> recent_admissions;
  LivenessCalibrator calibrator;
  std::mutex ir_mu;
  std::deque<video::Frame> ir_frames;  // the latest few, oldest first

  mutable std::mutex mu;  // guards display and stats
  DisplayResult display;
  Stats stats;
  std::deque<double> latencies, approaches;
  double busy_ms = 0, idle_ms = 0;

  Impl(PipelineOptions o, vision::FaceEngine& e, const match::FeatureIndex& i, match::Thresholds t,
       RulesLookup r, door::DoorController& d, RecordSink s)
      : options(std::move(o)),
        engine(e),
        index(i),
        thresholds(std::move(t)),
        rules(std::move(r)),
        door(d),
        sink(std::move(s)),
        tracker([] {
          video::TrackerOptions to;
          // Samples are taken from a face's first frame; a track becomes a person (decided,
          // counted for tailgating) only once seen in kMinHits frames (see TrackState).
          to.min_hits = 1;
          to.max_gap = std::chrono::milliseconds(1500);
          return to;
        }()),
        calibrator(options.liveness_calibration, options.liveness_threshold,
                   options.liveness_calibration_file) {}

  // ---- records and display
  void Emit(std::string_view kind, const nlohmann::json& payload, std::vector<uint8_t> jpeg) {
    try {
      sink(kind, payload, std::move(jpeg));
    } catch (const std::exception& e) {
      spdlog::error("记录丢失 / record sink failed: {}", e.what());
      std::lock_guard lock(mu);
      ++stats.sink_failures;
    } catch (...) {
      std::lock_guard lock(mu);
      ++stats.sink_failures;
    }
  }

  void Show(const std::string& result, const std::string& name, const std::string& zh,
            const std::string& en, const std::string& reason) {
    std::lock_guard lock(mu);
    DisplayResult d;
    d.seq = display.seq + 1;
    d.time_ms = NowMs();
    d.door = options.door;
    d.result = result;
    d.display_name = name;
    d.message_zh = zh;
    d.message_en = en;
    d.reason = reason;
    display = std::move(d);
  }

  // Mean time per call of each stage, for the bench and the status page.
  void Time(const char* stage, Clock::time_point since) const {
    const double ms = Ms(Clock::now() - since);
    std::lock_guard lock(mu);
    auto& [total, calls] = stage_time[stage];
    total += ms;
    ++calls;
  }
  mutable std::map<std::string, std::pair<double, uint64_t>> stage_time;

  void Count(const std::string& result) {
    std::lock_guard lock(mu);
    ++stats.decisions[result];
  }

  nlohmann::json AlarmPayload(const std::string& type, const char* severity, const char* zh,
                              const char* en) const {
    return {{"time_ms", NowMs()},
            {"door", options.door},
            {"alarm_type", type},
            {"severity", severity},
            {"description_zh", zh},
            {"description_en", en},
            {"terminal", options.terminal_id}};
  }

  // ---- per-frame work
  void OnFrame(const video::Frame& frame) {
    if (frame.image.empty())
      throw Error(ErrorCode::kBadImage, "空帧 / empty frame " + std::to_string(frame.seq));
    cv::Mat bgr;
    try {
      bgr = vision::ToBgr(frame.image);
    } catch (const Error& e) {
      throw Error(ErrorCode::kBadImage,
                  "帧格式无效 / bad frame " + std::to_string(frame.seq) + ": " + e.what());
    }
    const auto t0 = Clock::now();
    {
      std::lock_guard lock(mu);
      ++stats.frames;
    }
    const bool new_size = bgr.size() != last_size;
    last_size = bgr.size();
    if (options.motion_gate && !new_size && tracks.empty() && !window.active) {
      // Idle: only the cheap motion test, and only idle_fps times a second.
      const bool asleep = !gate_awake;
      if (asleep && options.idle_fps > 0 && have_idle_check &&
          frame.captured - last_idle_check <
              std::chrono::duration<double>(1.0 / options.idle_fps)) {
        Idle(t0);
        return;
      }
      last_idle_check = frame.captured;
      have_idle_check = true;
      gate_awake = gate.Update(bgr, frame.captured).awake;
      if (!gate_awake) {
        Idle(t0);
        return;
      }
    } else if (options.motion_gate) {
      gate_awake = gate.Update(bgr, frame.captured).awake || new_size;
    }
    Process(frame, bgr);
    std::lock_guard lock(mu);
    ++stats.processed;
    busy_ms += Ms(Clock::now() - t0);
  }
  bool gate_awake = false;

  void Idle(Clock::time_point t0) {
    std::lock_guard lock(mu);
    ++stats.idle;
    idle_ms += Ms(Clock::now() - t0);
  }

  void Process(const video::Frame& frame, const cv::Mat& bgr) {
    std::vector<vision::DetectedFace> faces;
    auto t = Clock::now();
    auto detected = engine.Detect(bgr);
    Time("detect", t);
    const vision::FrameGate frame_gate = options.gate();
    for (auto& f : detected)
      if (frame_gate.LargeEnough(std::max(f.det.box.width, f.det.box.height)))
        faces.push_back(std::move(f));
    std::vector<vision::Quality> quality;
    std::vector<float> qscore;
    for (const auto& f : faces) {
      t = Clock::now();
      quality.push_back(engine.AssessQuality(bgr, f));
      Time("quality", t);
      qscore.push_back(quality.back().score);
    }
    video::Frame shared{bgr, frame.captured, frame.seq};
    auto update = tracker.Update(shared, faces, qscore);
    for (const auto& ev : update.events) {
      if (ev.kind == video::TrackEvent::Kind::kEnded) {
        EndTrack(ev.track.id, frame.captured);
      } else {
        TrackState st;
        st.id = ev.track.id;
        st.first_seen = ev.track.first_seen;
        tracks.emplace(st.id, std::move(st));
      }
    }
    CloseWindowIfOver(frame.captured, bgr);
    for (size_t i = 0; i < faces.size(); ++i) {
      const int id = update.ids[i];
      if (id == 0) continue;
      auto it = tracks.find(id);
      if (it == tracks.end()) continue;
      TrackState& st = it->second;
      if (++st.hits == kMinHits) {
        std::lock_guard lock(mu);
        ++stats.tracks;
      }
      st.last_frame = bgr;
      st.last_box = faces[i].det.box;
      if (window.active && st.hits >= kMinHits) {
        window.seen.insert(id);
        if (!window.admitted.count(id)) window.evidence = bgr;
      }
      if (st.decided) continue;
      if (!frame_gate.GoodEnough(quality[i].score)) continue;
      Sample s;
      s.quality = quality[i].score;
      auto ts = Clock::now();
      s.live = engine.Liveness(bgr, faces[i]);
      Time("liveness", ts);
      if (options.ir_required) {
        ts = Clock::now();
        s.ir = IrScore(frame.captured, faces[i].det.box);
        Time("ir", ts);
      }
      ts = Clock::now();
      s.mask = options.mask_policy == MaskPolicy::kIgnore ? 0.f : MaskScore(faces[i].aligned);
      Time("mask", ts);
      if (options.mask_policy == MaskPolicy::kAskRemove && s.mask >= options.mask_score_threshold) {
        if (!st.mask_prompted) {
          st.mask_prompted = true;
          Show("mask_off", "", "请摘下口罩", "Please remove your mask", "mask");
        }
        continue;  // masked frames are not matched under this policy
      }
      ts = Clock::now();
      s.feature = engine.Embed(faces[i]).values;
      Time("embed", ts);
      s.frame = bgr;
      s.box = faces[i].det.box;
      s.captured = frame.captured;
      if (!st.first_good) st.first_good = frame.captured;
      st.samples.push_back(std::move(s));
      if (int(st.samples.size()) > options.max_fuse_frames) {
        // Keep the best frames; the newest one stays (it may complete the decision).
        auto worst = std::min_element(
            st.samples.begin(), st.samples.end() - 1,
            [](const Sample& a, const Sample& b) { return a.quality < b.quality; });
        st.samples.erase(worst);
      }
      MaybeDecide(st, frame.captured, false);
    }
    // Budgets also run out for tracks not seen in this frame.
    for (auto& [id, st] : tracks)
      if (!st.decided) MaybeDecide(st, frame.captured, false);
    CheckTailgating(bgr);
  }

  // ---- infrared (vision/ir_check.h)
  void OnIrFrame(const video::Frame& frame) {
    if (frame.image.empty() || frame.image.depth() != CV_8U)
      throw Error(ErrorCode::kBadImage, "红外帧无效 / bad IR frame " + std::to_string(frame.seq));
    std::lock_guard lock(ir_mu);
    ir_frames.push_back(frame);
    // A few frames cover the skew between the two cameras; older ones cannot pair.
    while (ir_frames.size() > 8) ir_frames.pop_front();
  }

  // The IR face score for a colour face captured at T, from the IR frame nearest in time
  // within ir_max_skew; −1 when there is none.
  float IrScore(Clock::time_point t, const cv::Rect2f& box) {
    cv::Mat ir;
    {
      std::lock_guard lock(ir_mu);
      auto best = options.ir_max_skew + std::chrono::milliseconds(1);
      for (const auto& f : ir_frames) {
        const auto d = f.captured > t ? f.captured - t : t - f.captured;
        if (d < best) best = std::chrono::duration_cast<std::chrono::milliseconds>(d), ir = f.image;
      }
    }
    if (ir.empty()) return -1.f;
    return vision::IrFaceScore(engine.detector(), ir, box, options.ir_check);
  }

  void EndTrack(int id, Clock::time_point now) {
    auto it = tracks.find(id);
    if (it == tracks.end()) return;
    TrackState& st = it->second;
    if (!st.decided) MaybeDecide(st, now, true);
    if (!st.decided && st.hits >= kMinHits) {
      if (st.mask_prompted) {
        Decide(st, nullptr, "uncertain", "mask", now);
      } else {
        std::lock_guard lock(mu);
        ++stats.undecided;
      }
    }
    tracks.erase(it);
  }

  // ---- decisions
  Verdict Evaluate(const TrackState& st) const {
    Verdict v;
    const size_t n = st.samples.size();
    std::vector<float> fused(st.samples[0].feature.size(), 0.f);
    std::vector<float> lives, irs;
    for (const auto& s : st.samples) {
      lives.push_back(s.live);
      if (s.ir >= 0) irs.push_back(s.ir);
      v.quality += s.quality / float(n);
      v.mask += s.mask / float(n);
      for (size_t k = 0; k < fused.size(); ++k) fused[k] += s.feature[k];
    }
    float norm = 0;
    for (float x : fused) norm += x * x;
    norm = std::sqrt(std::max(norm, 1e-12f));
    for (float& x : fused) x /= norm;
    v.liveness = vision::FuseLiveness(lives, options.liveness_fusion);
    v.live = v.liveness >= calibrator.threshold();
    if (v.live && options.ir_required) {
      float ir = 0;
      for (float x : irs) ir += x / float(irs.size());
      if (irs.empty())
        v.live = false, v.spoof_reason = "ir_missing";
      else if (ir < options.ir_threshold)
        v.live = false, v.spoof_reason = "ir_no_face";
    }
    v.masked = options.mask_policy != MaskPolicy::kIgnore && v.mask >= options.mask_score_threshold;
    match::LevelSetting level;
    {
      std::lock_guard lock(thresholds_mu);
      level = thresholds.at(options.level);
    }
    if (v.masked && options.mask_policy == MaskPolicy::kStricter)
      level.threshold += options.mask_threshold_delta;
    v.threshold = level.threshold;
    match::SearchOptions so;
    so.k = 2;
    so.threads = options.search_threads;
    const auto t = Clock::now();
    const auto ranked = index.Search(fused, engine.model_version(), so);
    Time("search", t);
    v.decision = match::Decide(ranked, level);
    return v;
  }

  // Decides when the fused frames suffice: an early accept of a live face after
  // fuse_frames, anything else once the budget is spent or the track has ended.
  void MaybeDecide(TrackState& st, Clock::time_point now, bool ended) {
    if (st.decided || st.samples.empty() || st.hits < kMinHits) return;
    const bool budget_spent = now - *st.first_good >= options.decision_budget;
    const bool enough = int(st.samples.size()) >= options.fuse_frames;
    if (!enough && !budget_spent && !ended) return;
    Verdict v = Evaluate(st);
    const bool accept = v.live && v.decision.outcome == match::Outcome::kAccept;
    if (!accept && !budget_spent && !ended) return;  // more frames may settle it
    // Every approach the 1:N search recognised feeds the device's calibration, whatever
    // its liveness: the sample is then not cut off by the threshold it sets.
    if (v.decision.outcome == match::Outcome::kAccept) calibrator.Add(v.liveness);
    std::string result, reason;
    if (!v.live)
      result = "spoof", reason = v.spoof_reason;
    else if (v.decision.outcome == match::Outcome::kStranger)
      result = "stranger";
    else if (v.decision.outcome == match::Outcome::kUncertain)
      result = "uncertain";
    else
      result = "known";
    Decide(st, &v, result, reason, now);
  }

  const Sample* BestSample(const TrackState& st) const {
    const Sample* best = nullptr;
    for (const auto& s : st.samples)
      if (!best || s.quality > best->quality) best = &s;
    return best;
  }

  void Decide(TrackState& st, const Verdict* v, std::string result, std::string reason,
              Clock::time_point now) {
    st.decided = true;
    const Sample* best = BestSample(st);
    const cv::Mat& snap_frame = best ? best->frame : st.last_frame;
    const cv::Rect2f snap_box = best ? best->box : st.last_box;
    // NOW is the capture time of the frame that completed the decision.
    const Clock::time_point decided_frame = now;
    nlohmann::json rec = {{"time_ms", NowMs()},
                          {"door", options.door},
                          {"person", nullptr},
                          {"score", v ? v->decision.score : 0.f},
                          {"second_score", v ? v->decision.second_score : -1.f},
                          {"liveness", v ? v->liveness : 0.f},
                          {"quality", v ? v->quality : 0.f},
                          {"frames", st.samples.size()},
                          {"mask", v ? v->masked : st.mask_prompted},
                          {"mask_score", v ? v->mask : 0.f},
                          {"level", match::LevelName(options.level)},
                          {"threshold", v ? v->threshold : 0.f},
                          {"track", st.id},
                          {"terminal", options.terminal_id}};
    std::string display_name;
    if (result == "known") {
      const std::string& person = v->decision.person;
      rec["person"] = person;
      // A track that broke up and came back: the same approach, decided already.
      auto recent = recent_admissions.find(person);
      if (recent != recent_admissions.end() && now - recent->second < options.repeat_suppression) {
        st.result = "open";
        st.admitted = true;
        if (window.active) window.admitted.insert(st.id);
        return;
      }
      std::optional<PersonRules> pr;
      try {
        pr = rules(person);
      } catch (const std::exception& e) {
        spdlog::error("规则读取失败 / rules lookup for {} failed: {}", person, e.what());
      }
      if (!pr) {
        // In the index but no longer in the local state: being removed right now.
        result = "deny";
        reason = "not_in_gallery";
      } else {
        display_name = pr->display_name;
        const Authorisation a = Authorise(*pr, options.door, SysClock::now());
        if (a == Authorisation::kAllowed) {
          result = "open";
          const auto open_for =
              pr->open_ms > 0 ? std::chrono::milliseconds(pr->open_ms) : options.default_open;
          try {
            door.Open(options.door, open_for);
          } catch (const std::exception& e) {
            reason = std::string("door_error: ") + e.what();
            spdlog::error("开门失败 / door {} did not open: {}", options.door, e.what());
            std::lock_guard lock(mu);
            ++stats.door_failures;
          }
          const auto commanded = Clock::now();
          const double latency = Ms(commanded - decided_frame);
          const double approach = Ms(commanded - st.first_seen);
          rec["latency_ms"] = latency;
          rec["open_ms"] = open_for.count();
          {
            std::lock_guard lock(mu);
            latencies.push_back(latency);
            approaches.push_back(approach);
            if (latencies.size() > 10000) latencies.pop_front(), approaches.pop_front();
          }
          st.admitted = true;
          recent_admissions[person] = now;
          OpenWindow(st.id, now, open_for);
        } else {
          result = "deny";
          reason = AuthorisationName(a);
          Show("deny", display_name, AuthorisationMessageZh(a), AuthorisationMessageEn(a), reason);
        }
      }
    }
    st.result = result;
    rec["decision"] = result;
    rec["reason"] = reason;
    Emit("access", rec, FaceSnapshot(snap_frame, snap_box, options.jpeg_quality));
    Count(result);
    spdlog::info("门 {} 轨迹 {}: {} {} score {:.3f} live {:.2f} frames {}{}", options.door, st.id,
                 result, rec["person"].is_string() ? rec["person"].get<std::string>() : "-",
                 v ? v->decision.score : 0.f, v ? v->liveness : 0.f, st.samples.size(),
                 reason.empty() ? "" : " (" + reason + ")");
    if (result == "open") {
      Show("open", display_name, "请通行", "Please pass", reason);
    } else if (result == "deny") {
      if (reason == "not_in_gallery") Show("deny", "", "未登记", "Not registered", reason);
    } else if (result == "stranger") {
      Show("stranger", "", "未识别：陌生人", "Not recognised: stranger", reason);
      auto alarm = AlarmPayload("stranger", "minor", "陌生人", "stranger at the door");
      alarm["score"] = rec["score"];
      alarm["liveness"] = rec["liveness"];
      alarm["track"] = st.id;
      Emit("alarm", alarm, FrameSnapshot(snap_frame, options.jpeg_quality));  // R3.1.2.5
    } else if (result == "spoof") {
      Show("spoof", "", "活体检测未通过", "Liveness check failed", reason);
      auto alarm = AlarmPayload("spoof", "major", "假体攻击（照片/屏幕）",
                                "spoof attempt (photo or screen)");
      alarm["liveness"] = rec["liveness"];
      alarm["track"] = st.id;
      Emit("alarm", alarm, FrameSnapshot(snap_frame, options.jpeg_quality));
    } else if (result == "uncertain") {
      if (reason == "mask")
        Show("mask_off", "", "请摘下口罩", "Please remove your mask", reason);
      else
        Show("uncertain", "", "请再试一次", "Please try again", reason);
    }
  }

  // ---- anti-tailgating (R3.2.2.2)
  void OpenWindow(int track, Clock::time_point now, std::chrono::milliseconds open_for) {
    if (options.tailgating_grace.count() == 0) return;
    if (!window.active) {
      window = DoorWindow{};
      window.active = true;
      // Everyone already in view counts: they are at the door while it is open.
      for (const auto& t : tracker.tracks())
        if (t.confirmed && t.missed == 0 && t.hits >= kMinHits) window.seen.insert(t.id);
    }
    window.admitted.insert(track);
    window.seen.insert(track);
    window.until = std::max(window.until, now + open_for + options.tailgating_grace);
  }

  // Tracks seen in the window that were not admitted: decided otherwise, ended without
  // a decision, or (when the window closes) still pending. Pending tracks otherwise wait:
  // a second resident is admitted on their own face.
  size_t Unauthorised(bool closing) const {
    size_t n = 0;
    for (int id : window.seen) {
      if (window.admitted.count(id)) continue;
      auto it = tracks.find(id);
      if (it == tracks.end() || it->second.decided || closing) ++n;
    }
    return n;
  }

  void CheckTailgating(const cv::Mat& frame) {
    if (!window.active || window.alarmed) return;
    if (Unauthorised(false) > 0) RaiseTailgating(frame);
  }

  void CloseWindowIfOver(Clock::time_point now, const cv::Mat& frame) {
    if (!window.active || now <= window.until) return;
    if (!window.alarmed && Unauthorised(true) > 0) RaiseTailgating(frame);
    window.active = false;
  }

  void RaiseTailgating(const cv::Mat& frame) {
    window.alarmed = true;
    auto alarm =
        AlarmPayload("tailgating", "major", "尾随通行", "tailgating: more people than admitted");
    alarm["people"] = window.seen.size();
    alarm["admitted"] = window.admitted.size();
    const cv::Mat& evidence = window.evidence.empty() ? frame : window.evidence;
    Emit("alarm", alarm, FrameSnapshot(evidence, options.jpeg_quality));
    Show("tailgating", "", "请勿尾随，一人一刷", "No tailgating: one person per pass",
         "tailgating");
    std::lock_guard lock(mu);
    ++stats.tailgating_alarms;
  }

  void Flush() {
    const auto now = Clock::now();
    for (const auto& ev : tracker.Flush()) EndTrack(ev.track.id, now);
    tracks.clear();
    if (window.active) {
      if (!window.alarmed && Unauthorised(true) > 0) RaiseTailgating(window.evidence);
      window.active = false;
    }
  }
};

AccessPipeline::AccessPipeline(PipelineOptions options, vision::FaceEngine& engine,
                               const match::FeatureIndex& index, match::Thresholds thresholds,
                               RulesLookup rules, door::DoorController& door, RecordSink sink) {
  if (!rules) throw Error(ErrorCode::kInvalidArgument, "AccessPipeline needs a RulesLookup");
  if (!sink) throw Error(ErrorCode::kInvalidArgument, "AccessPipeline needs a RecordSink");
  if (options.door < 0 || options.door >= door.door_count())
    throw Error(ErrorCode::kInvalidArgument, "门号无效 / door " + std::to_string(options.door) +
                                                 " does not exist on " + door.name() + " (" +
                                                 std::to_string(door.door_count()) + " doors)");
  if (engine.model_version() != index.options().model_version)
    throw Error(ErrorCode::kInvalidArgument, "the index holds features of " +
                                                 index.options().model_version +
                                                 ", the engine makes " + engine.model_version());
  impl_ = std::make_unique<Impl>(std::move(options), engine, index, std::move(thresholds),
                                 std::move(rules), door, std::move(sink));
}

AccessPipeline::~AccessPipeline() = default;

void AccessPipeline::OnFrame(const video::Frame& frame) {
  impl_->OnFrame(frame);
}
void AccessPipeline::Flush() {
  impl_->Flush();
}
void AccessPipeline::OnIrFrame(const video::Frame& frame) {
  impl_->OnIrFrame(frame);
}
const PipelineOptions& AccessPipeline::options() const {
  return impl_->options;
}

void AccessPipeline::SetThresholds(match::Thresholds thresholds) {
  std::lock_guard lock(impl_->thresholds_mu);
  impl_->thresholds = std::move(thresholds);
}

match::Thresholds AccessPipeline::thresholds() const {
  std::lock_guard lock(impl_->thresholds_mu);
  return impl_->thresholds;
}

DisplayResult AccessPipeline::last_result() const {
  std::lock_guard lock(impl_->mu);
  return impl_->display;
}

AccessPipeline::Stats AccessPipeline::stats() const {
  std::lock_guard lock(impl_->mu);
  Stats s = impl_->stats;
  std::vector<double> lat(impl_->latencies.begin(), impl_->latencies.end());
  std::vector<double> app(impl_->approaches.begin(), impl_->approaches.end());
  s.latency_p50_ms = Percentile(lat, 0.5);
  s.latency_p95_ms = Percentile(lat, 0.95);
  s.latency_max_ms = lat.empty() ? 0 : *std::max_element(lat.begin(), lat.end());
  s.approach_p50_ms = Percentile(app, 0.5);
  s.approach_p95_ms = Percentile(app, 0.95);
  s.busy_ms_per_frame = s.processed ? impl_->busy_ms / double(s.processed) : 0;
  s.idle_ms_per_frame = s.idle ? impl_->idle_ms / double(s.idle) : 0;
  for (const auto& [stage, tc] : impl_->stage_time)
    s.stage_ms[stage] = tc.second ? tc.first / double(tc.second) : 0;
  s.fps = impl_->busy_ms > 0 ? double(s.processed) * 1000.0 / impl_->busy_ms : 0;
  s.liveness_threshold = impl_->calibrator.threshold();
  s.liveness_calibration_samples = impl_->calibrator.samples();
  return s;
}

nlohmann::json AccessPipeline::Stats::ToJson() const {
  return {{"frames", frames},
          {"processed", processed},
          {"idle", idle},
          {"tracks", tracks},
          {"undecided", undecided},
          {"decisions", decisions},
          {"tailgating_alarms", tailgating_alarms},
          {"door_failures", door_failures},
          {"sink_failures", sink_failures},
          {"latency_p50_ms", latency_p50_ms},
          {"latency_p95_ms", latency_p95_ms},
          {"latency_max_ms", latency_max_ms},
          {"approach_p50_ms", approach_p50_ms},
          {"approach_p95_ms", approach_p95_ms},
          {"fps", fps},
          {"busy_ms_per_frame", busy_ms_per_frame},
          {"idle_ms_per_frame", idle_ms_per_frame},
          {"stage_ms", stage_ms},
          {"liveness_threshold", liveness_threshold},
          {"liveness_calibration_samples", liveness_calibration_samples}};
}

}  // namespace anju::terminal
