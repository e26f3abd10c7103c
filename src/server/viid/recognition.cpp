// Recognition workers (R3.1.4): each capture's face through the quality and pose gate, 1:N
// search at the camera's site level, and a stranger cluster when no one matched.
#include "server/viid/viid_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "crypto/envelope.h"
#include "match/index.h"
#include "server/storage/capture_repo.h"
#include "server/storage/stranger_repo.h"
#include "server/viid/common.h"
#include "vision/engine.h"
#include "vision/image.h"

namespace anju::server {

using cameras::FeatureAad;
using cameras::FeatureBytes;
using cameras::ImageAad;
using cameras::NowMs;
using nlohmann::json;
using storage::CaptureRepo;
using storage::StrangerRepo;

// ---- recognition -----------------------------------------------------------------------

void ViidService::Worker() {
  std::unique_ptr<vision::FaceEngine> engine;
  bool engine_failed = false;
  while (!Stopping()) {
    auto item = queue_->Pop(std::chrono::milliseconds(200));
    if (!item) continue;
    std::optional<RecognitionJob> job(
        RecognitionJob{item->id, item->enqueued_ms, {item->payload.begin(), item->payload.end()}});
    ++busy_;
    if (!engine && !engine_failed && !deps_.model_version.empty()) {
      try {
        engine = vision::FaceEngine::Open(deps_.model_dir);
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
      Recognise(*job, engine.get());
    } catch (const std::exception& e) {
      ++stats_.failed;
      spdlog::error("viid: recognition of {} failed: {}", job->capture_id, e.what());
      try {
        auto conn = db_->Acquire();
        CaptureRepo::MarkFailed(
            conn, job->capture_id,
            json::array({e.what()}).dump(-1, ' ', false, json::error_handler_t::replace), NowMs());
      } catch (const std::exception& e2) {
        final = false;
        spdlog::error("viid: capture {} stays queued: {}", job->capture_id, e2.what());
      }
    }
    try {
      if (final)
        queue_->Ack(*item);
      else
        queue_->Nak(*item, std::chrono::seconds(5));
    } catch (const std::exception& e) {
      spdlog::warn("viid: work item {}: {}", item->id, e.what());  // redelivered, harmless
    }
    --busy_;
  }
}

bool ViidService::WaitIdle(std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (queue_->size() == 0 && busy_ == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

void ViidService::Recognise(RecognitionJob& job, void* engine_ptr) {
  auto* engine = static_cast<vision::FaceEngine*>(engine_ptr);
  std::string device;
  int64_t time_ms = 0;
  {
    auto conn = db_->Acquire();
    const auto head = CaptureRepo::Head(conn, job.capture_id);
    if (!head || head->state != "queued") return;
    device = head->device_id;
    time_ms = head->time_ms;
  }
  std::vector<uint8_t> crop = std::move(job.face_jpeg);
  if (crop.empty()) {
    auto conn = db_->Acquire();
    if (const auto best = CaptureRepo::BestImage(conn, job.capture_id))
      crop = crypto::Open(key_, blobs_->Get(best->file),
                          crypto::AsBytes(ImageAad(job.capture_id, int(best->n))));
  }
  auto finish = [&](const std::string& state, const std::string& outcome, const std::string& person,
                    std::optional<double> score, std::optional<double> second,
                    std::optional<int64_t> stranger, const json& quality, const json& reasons,
                    bool dark, const std::vector<uint8_t>& feature_sealed) {
    const int64_t now = NowMs();
    {
      auto conn = db_->Acquire();
      // Only a capture still queued is finished: a redelivered item that another worker
      // finished meanwhile is neither counted, published nor forwarded twice.
      if (!CaptureRepo::SaveResult(conn, job.capture_id,
                                   {state, outcome, person, score, second, stranger, quality.dump(),
                                    reasons.dump(), dark, feature_sealed, now}))
        return;
    }
    const int64_t latency = now - job.enqueued_ms;
    stats_.latency_sum_ms += latency;
    int64_t prev = stats_.latency_max_ms.load();
    while (latency > prev && !stats_.latency_max_ms.compare_exchange_weak(prev, latency)) {
    }
    ++stats_.recognised;
    try {
      bus_->Publish("capture", Capture(job.capture_id));
    } catch (const Error& e) {
      // The capture is final and stored: the live stream is best effort.
      spdlog::warn("viid: live stream: capture {}: {}", job.capture_id, e.what());
    }
    if (state == "done") ForwardCapture(job.capture_id, crop);
  };
  if (!engine) {
    finish("unrecognised", "", "", std::nullopt, std::nullopt, std::nullopt, json::object(),
           json::array({"models_missing"}), false, {});
    return;
  }
  cv::Mat image;
  try {
    image = vision::DecodeImage(crop);
  } catch (const Error&) {
    ++stats_.failed;
    finish("failed", "", "", std::nullopt, std::nullopt, std::nullopt, json::object(),
           json::array({"bad_image"}), false, {});
    return;
  }
  // A camera's face crop usually holds one centred face: the landmarker alone finds it
  // (no detector passes); anything else goes through the detector as before.
  std::optional<vision::DetectedFace> face;
  if (options_.tight_crop) face = engine->LocateInTightCrop(image);
  if (!face) face = engine->DetectLargest(image);
  if (!face) {
    ++stats_.no_face;
    finish("no_face", "", "", std::nullopt, std::nullopt, std::nullopt, json::object(),
           json::array({"no_face"}), false, {});
    return;
  }
  const vision::Quality q = engine->AssessQuality(image, *face);
  const bool dark = q.brightness < engine->options().dark_level;
  json quality = {{"score", q.score},         {"inter_pupil", q.inter_pupil},
                  {"sharpness", q.sharpness}, {"brightness", q.brightness},
                  {"yaw", q.pose.yaw},        {"pitch", q.pose.pitch},
                  {"roll", q.pose.roll},      {"found_by", face->found_by}};
  json reasons = json::array();
  if (q.inter_pupil < options_.min_inter_pupil) reasons.push_back("too_small");
  if (std::abs(q.pose.yaw) > options_.max_yaw || std::abs(q.pose.pitch) > options_.max_pitch)
    reasons.push_back("not_frontal");
  if (q.sharpness < options_.min_sharpness) reasons.push_back("blurred");
  if (!reasons.empty()) {
    ++stats_.rejected;
    finish("rejected", "", "", std::nullopt, std::nullopt, std::nullopt, quality, reasons, dark,
           {});
    return;
  }
  // Embed normalises a dark aligned crop itself (EngineOptions::dark_level, R3.1.4.1 night).
  const vision::Feature feature = engine->Embed(*face, options_.embed_flip);
  const auto sealed_feature =
      crypto::Seal(key_, FeatureBytes(feature.values), crypto::AsBytes(FeatureAad(job.capture_id)));
  match::Decision d;
  d.score = -1;
  // The camera's site may have levels calibrated on its own gallery (stricter than the file's).
  match::LevelSetting level = level_;
  bool site_level = false;
  if (deps_.site_level)
    if (const auto dev = Device(device); dev && dev->building_id)
      if (const auto l = deps_.site_level(*dev->building_id, options_.level))
        level = *l, site_level = true;
  quality["threshold"] = level.threshold;
  quality["threshold_source"] = site_level ? "site" : "base";
  match::FeatureIndex* index = deps_.index ? deps_.index() : nullptr;
  if (index && index->size() > 0) {
    match::SearchOptions so;
    so.k = 2;
    const auto ranked = index->Search(feature.values, feature.model_version, so);
    d = match::Decide(ranked, level);
  }
  if (d.outcome == match::Outcome::kAccept) {
    ++stats_.accepted;
    finish("done", "accept", d.person, d.score, d.second_score, std::nullopt, quality, reasons,
           dark, sealed_feature);
    OnPerson(job.capture_id, device, time_ms, d.person, crop);
    return;
  }
  if (d.outcome == match::Outcome::kUncertain) {
    finish("done", "uncertain", d.person, d.score, d.second_score, std::nullopt, quality, reasons,
           dark, sealed_feature);
    return;
  }
  // Stranger: join or start a visitor cluster, persisted with the capture.
  ++stats_.strangers;
  int64_t next_id = 0;
  {
    auto conn = db_->Acquire();
    next_id = std::max(StrangerRepo::MaxId(conn), clusters_->MaxId()) + 1;
  }
  const StrangerAssignment a = clusters_->Assign(feature.values, [&] { return next_id; });
  {
    const auto centroid = clusters_->Centroid(a.cluster);
    const auto sealed =
        crypto::Seal(key_, FeatureBytes(centroid),
                     crypto::AsBytes("anju-stranger/v1/" + std::to_string(a.cluster)));
    auto conn = db_->Acquire();
    StrangerRepo::Upsert(conn, {a.cluster, sealed, a.members, time_ms, job.capture_id, device});
  }
  finish("done", "stranger", "",
         index && index->size() > 0 ? std::optional<double>(d.score) : std::nullopt, std::nullopt,
         a.cluster, quality, reasons, dark, sealed_feature);
  OnStranger(job.capture_id, device, time_ms, a.cluster, crop);
}

}  // namespace anju::server
