#include "server/viid/recognition.h"

#include <spdlog/spdlog.h>

#include <cmath>

#include "core/error.h"
#include "crypto/envelope.h"
#include "match/index.h"
#include "server/viid/common.h"
#include "vision/engine.h"
#include "vision/image.h"

namespace anju::server {

using cameras::FeatureAad;
using cameras::FeatureBytes;
using cameras::NowMs;
using nlohmann::json;

RecognitionWorkers::RecognitionWorkers(ViidContext& ctx, CameraRegistry& cameras,
                                       CaptureStore& captures, StrangerDirectory& strangers,
                                       AlertEngine& alerts, Forwarders& forwarders,
                                       match::LevelSetting level)
    : ctx_(ctx),
      cameras_(cameras),
      captures_(captures),
      strangers_(strangers),
      alerts_(alerts),
      forwarders_(forwarders),
      level_(level) {}

void RecognitionWorkers::Run() {
  std::unique_ptr<vision::FaceEngine> engine;
  bool engine_failed = false;
  while (!ctx_.Stopping()) {
    auto item = ctx_.queue().Pop(std::chrono::milliseconds(200));
    if (!item) continue;
    RecognitionJob job{item->id, item->enqueued_ms, {item->payload.begin(), item->payload.end()}};
    ++busy_;
    if (!engine && !engine_failed && !ctx_.deps().model_version.empty()) {
      try {
        engine = vision::FaceEngine::Open(ctx_.deps().model_dir);
      } catch (const Error& e) {
        engine_failed = true;
        spdlog::error("viid: no recognition engine: {}", e.what());
      }
    }
    // Acked once the capture is final (finishing is idempotent: only a `queued` capture is
    // finished, so a redelivered item does nothing twice); when not even the failure can
    // be written (the database is away), handed out again later.
    bool final = true;
    try {
      Recognise(job, engine.get());
    } catch (const std::exception& e) {
      ++ctx_.stats().failed;
      spdlog::error("viid: recognition of {} failed: {}", job.capture_id, e.what());
      try {
        captures_.MarkFailed(job.capture_id, e.what(), NowMs());
      } catch (const std::exception& e2) {
        final = false;
        spdlog::error("viid: capture {} stays queued: {}", job.capture_id, e2.what());
      }
    }
    try {
      if (final)
        ctx_.queue().Ack(*item);
      else
        ctx_.queue().Nak(*item, std::chrono::seconds(5));
    } catch (const std::exception& e) {
      spdlog::warn("viid: work item {}: {}", item->id, e.what());  // redelivered, harmless
    }
    --busy_;
  }
}

bool RecognitionWorkers::WaitIdle(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (ctx_.queue().size() == 0 && busy_ == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

bool RecognitionWorkers::Finish(const RecognitionJob& job, const RecognitionResult& r,
                                const std::vector<uint8_t>& crop) {
  const int64_t now = NowMs();
  // Only a capture still queued is finished: a redelivered item that another worker
  // finished meanwhile is neither counted, published nor forwarded twice.
  // A recognised capture is queued for the upper platform in the transaction that finishes
  // it (R3.3.2.4): a worker killed, or a database lost, between the two can neither leave
  // a `done` capture unforwarded nor, on redelivery, queue it twice.
  CaptureDetail detail;
  const auto& on_finished = ctx_.deps().on_finished;
  auto also = [&](db::Conn& conn, const CaptureDetail& d) {
    if (r.state == "done") forwarders_.ForwardCapture(conn, d, crop);
    if (on_finished) on_finished(conn, d, crop);  // the platform's uplink (R3.3.2.4)
  };
  if (!captures_.Finish(job.capture_id, r, now, also, &detail)) return false;
  ctx_.stats().AddLatency(now - job.enqueued_ms);
  ++ctx_.stats().recognised;
  try {
    ctx_.bus().Publish("capture", ToJson(detail));
  } catch (const Error& e) {
    // The capture is final and stored: the live stream is best effort.
    spdlog::warn("viid: live stream: capture {}: {}", job.capture_id, e.what());
  }
  return true;
}

void RecognitionWorkers::Recognise(RecognitionJob& job, vision::FaceEngine* engine) {
  const auto pending = captures_.PendingCapture(job.capture_id);
  if (!pending) return;
  const std::string& device = pending->device_id;
  const int64_t time_ms = pending->time_ms;
  std::vector<uint8_t> crop = std::move(job.face_jpeg);
  if (crop.empty()) crop = captures_.FaceCrop(job.capture_id);
  RecognitionResult r;
  if (!engine) {
    r.state = "unrecognised";
    r.reasons = json::array({"models_missing"});
    Finish(job, r, crop);
    return;
  }
  cv::Mat image;
  try {
    image = vision::DecodeImage(crop);
  } catch (const Error&) {
    ++ctx_.stats().failed;
    r.state = "failed";
    r.reasons = json::array({"bad_image"});
    Finish(job, r, crop);
    return;
  }
  const ViidOptions& o = ctx_.options();
  // A camera's face crop usually holds one centred face: the landmarker alone finds it
  // (no detector passes); anything else goes through the detector as before.
  std::optional<vision::DetectedFace> face;
  if (o.tight_crop) face = engine->LocateInTightCrop(image);
  if (!face) face = engine->DetectLargest(image);
  if (!face) {
    ++ctx_.stats().no_face;
    r.state = "no_face";
    r.reasons = json::array({"no_face"});
    Finish(job, r, crop);
    return;
  }
  const vision::Quality q = engine->AssessQuality(image, *face);
  r.dark = q.brightness < engine->options().dark_level;
  r.quality = {{"score", q.score},         {"inter_pupil", q.inter_pupil},
               {"sharpness", q.sharpness}, {"brightness", q.brightness},
               {"yaw", q.pose.yaw},        {"pitch", q.pose.pitch},
               {"roll", q.pose.roll},      {"found_by", face->found_by}};
  if (q.inter_pupil < o.min_inter_pupil) r.reasons.push_back("too_small");
  if (std::abs(q.pose.yaw) > o.max_yaw || std::abs(q.pose.pitch) > o.max_pitch)
    r.reasons.push_back("not_frontal");
  if (q.sharpness < o.min_sharpness) r.reasons.push_back("blurred");
  if (!r.reasons.empty()) {
    ++ctx_.stats().rejected;
    r.state = "rejected";
    Finish(job, r, crop);
    return;
  }
  // Embed normalises a dark aligned crop itself (EngineOptions::dark_level, R3.1.4.1 night).
  const vision::Feature feature = engine->Embed(*face, o.embed_flip);
  r.feature_sealed = crypto::Seal(ctx_.key(), FeatureBytes(feature.values),
                                  crypto::AsBytes(FeatureAad(job.capture_id)));
  match::Decision d;
  d.score = -1;
  // The camera's record: for its site's levels and for the stranger rules (read once, only
  // when one of them needs it).
  std::optional<ViidDevice> camera;
  bool camera_read = false;
  auto camera_record = [&]() -> const std::optional<ViidDevice>& {
    if (!camera_read) camera = cameras_.Get(device), camera_read = true;
    return camera;
  };
  // The camera's site may have levels calibrated on its own gallery (stricter than the file's).
  match::LevelSetting level = level_;
  bool site_level = false;
  if (ctx_.deps().site_level && camera_record() && camera_record()->building_id)
    if (const auto l = ctx_.deps().site_level(*camera_record()->building_id, o.level))
      level = *l, site_level = true;
  r.quality["threshold"] = level.threshold;
  r.quality["threshold_source"] = site_level ? "site" : "base";
  match::FeatureIndex* index = ctx_.deps().index ? ctx_.deps().index() : nullptr;
  const bool searched = index && index->size() > 0;
  if (searched) {
    match::SearchOptions so;
    so.k = 2;
    d = match::Decide(index->Search(feature.values, feature.model_version, so), level);
  }
  r.state = "done";
  if (d.outcome == match::Outcome::kAccept || d.outcome == match::Outcome::kUncertain) {
    const bool accept = d.outcome == match::Outcome::kAccept;
    if (accept) ++ctx_.stats().accepted;
    r.outcome = accept ? "accept" : "uncertain";
    r.person = d.person;
    r.score = d.score;
    r.second_score = d.second_score;
    Finish(job, r, crop);
    if (accept) alerts_.OnPerson(job.capture_id, device, time_ms, d.person, crop);
    return;
  }
  // Stranger: join or start a visitor cluster, persisted with the capture.
  ++ctx_.stats().strangers;
  r.outcome = "stranger";
  if (searched) r.score = d.score;
  r.stranger_id = strangers_.Assign(feature.values, time_ms, job.capture_id, device);
  Finish(job, r, crop);
  alerts_.OnStranger(job.capture_id, device, camera_record(), time_ms, *r.stranger_id, crop);
}

}  // namespace anju::server
