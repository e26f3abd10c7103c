// Captures (docs/viid.md): the intake of /VIID/Faces (sealed images and clip frames written
// and fsynced before the row commits), the capture lists and images, and retention.
#include "server/viid/viid_service.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <set>

#include "core/error.h"
#include "core/file_io.h"
#include "core/uuid.h"
#include "crypto/bytes.h"
#include "server/retention/retention.h"
#include "server/storage/capture_repo.h"
#include "server/storage/stranger_repo.h"
#include "server/storage/viid_camera_repo.h"
#include "server/viid/common.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;
namespace viid = protocol::viid;
using Outcome = ViidService::ViidAnswer::Outcome;
using cameras::ClipAad;
using cameras::ImageAad;
using cameras::NowMs;
using cameras::StatusAnswer;
using storage::CaptureRepo;
using storage::StrangerRepo;
using storage::ViidCameraRepo;

namespace {

json CaptureJson(const storage::CaptureRow& r) {
  auto opt_d = [](const std::optional<double>& v) { return v ? json(*v) : json(); };
  auto opt_i = [](const std::optional<int64_t>& v) { return v ? json(*v) : json(); };
  return {{"id", r.id},
          {"device_id", r.device_id},
          {"face_id", r.face_id},
          {"time_ms", r.time_ms},
          {"received_ms", r.received_ms},
          {"box", json::parse(r.box, nullptr, false)},
          {"images", r.images},
          {"state", r.state},
          {"outcome", r.outcome},
          {"person", r.person.empty() ? json() : json(r.person)},
          {"score", opt_d(r.score)},
          {"second_score", opt_d(r.second_score)},
          {"stranger_id", opt_i(r.stranger_id)},
          {"quality", json::parse(r.quality, nullptr, false)},
          {"reasons", json::parse(r.reasons, nullptr, false)},
          {"dark", r.dark},
          {"recognised_ms", r.recognised_ms},
          {"place", r.place ? json(*r.place) : json()},
          {"building_id", opt_i(r.building_id)},
          {"unit_id", opt_i(r.unit_id)},
          // The face image's number (type 11), for a thumbnail in lists; null without one.
          {"face_image", opt_i(r.face_image)}};
}

}  // namespace

std::string ViidService::ImageKey(const std::string& id, const std::string& name,
                                  int64_t time_ms) const {
  const std::string ymd = viid::FormatTime(time_ms, 0).substr(0, 8);
  return "captures/" + ymd.substr(0, 4) + "/" + ymd.substr(4, 2) + "/" + ymd.substr(6, 2) + "/" +
         id + "-" + name + ".jpg.sealed";
}

ViidService::ViidAnswer ViidService::Faces(const std::string& device, const std::string& body,
                                           const std::string& remote_addr) {
  viid::ParsedFaceList parsed;
  try {
    parsed = viid::ParseFaceList(body);
  } catch (const Error& e) {
    spdlog::info("viid: upload from camera {} refused: {}", device, e.what());
    return StatusAnswer(Outcome::kMalformed, viid::kPathFaces, viid::kInvalidJsonFormat, e.what(),
                        "");
  }
  // Images given only as a URL are fetched from the uploading camera itself (image_fetch.h).
  const size_t fetched = cameras::ResolveStoragePaths(parsed, remote_addr, options_.image_fetch);
  const int64_t now = NowMs();
  // Any accepted request keeps a registration alive (the standard's registration lapses
  // only without requests).
  if (SessionAddr(device) == remote_addr) KeepSession(device, remote_addr);
  std::vector<viid::ResponseStatus> statuses;
  struct Pending {
    std::string id;
    const viid::FaceObject* face;
    int64_t time_ms;
    std::vector<std::string> files;  // blob keys
  };
  std::vector<Pending> pending;
  std::vector<RecognitionJob> jobs;
  for (const auto& f : parsed.list.faces) {
    {
      auto conn = db_->Acquire();
      if (CaptureRepo::HasFace(conn, device, f.face_id)) {
        // sent again after a lost answer: first copy wins
        statuses.push_back({viid::kPathFaces, viid::kOk, "重复 / duplicate", f.face_id, ""});
        continue;
      }
    }
    int64_t t = now;
    for (const std::string* ts : {&f.face_appear_time, &f.location_mark_time})
      if (!ts->empty()) {
        t = viid::ParseTime(*ts);
        break;
      }
    if (t == now && !f.images.empty() && !f.images[0].shot_time.empty())
      t = viid::ParseTime(f.images[0].shot_time);
    // A camera with a wrong clock: keep the arrival time (the event store refuses such
    // times too).
    if (t < 1577836800000 || t > now + 24 * 3600 * 1000) t = now;
    Pending p{NewUuid(), &f, t, {}};
    // The sealed images and clip frames, durable in the blob store (with their
    // directories) before the rows naming them commit.
    std::vector<crypto::Bytes> sealed;
    std::vector<std::string> keys;
    for (size_t n = 0; n < f.images.size(); ++n) {
      sealed.push_back(
          crypto::Seal(key_, f.images[n].data, crypto::AsBytes(ImageAad(p.id, int(n)))));
      keys.push_back(ImageKey(p.id, std::to_string(n), t));
    }
    for (size_t n = 0; n < f.clip.size(); ++n) {
      sealed.push_back(crypto::Seal(key_, f.clip[n].data, crypto::AsBytes(ClipAad(p.id, int(n)))));
      keys.push_back(ImageKey(p.id, "clip" + std::to_string(n), t));
    }
    try {
      std::vector<std::pair<std::string, std::span<const uint8_t>>> batch;
      for (size_t i = 0; i < keys.size(); ++i) batch.emplace_back(keys[i], sealed[i]);
      blobs_->PutMany(batch);
      p.files = std::move(keys);
    } catch (const Error& e) {
      for (const auto& key : keys) blobs_->Remove(key);
      spdlog::error("viid: cannot store capture: {}", e.what());
      statuses.push_back(
          {viid::kPathFaces, viid::kDeviceBusy, "存储失败 / storage failed", f.face_id, ""});
      continue;
    }
    pending.push_back(std::move(p));
  }
  if (!pending.empty()) {
    auto conn = db_->Acquire();
    db::Transaction tx(conn);
    for (const auto& p : pending) {
      const auto& f = *p.face;
      const json box = {f.left_top_x, f.left_top_y, f.right_btm_x, f.right_btm_y};
      if (!CaptureRepo::Insert(conn, {p.id, device, f.face_id, p.time_ms, now, box.dump(),
                                      int64_t(f.images.size())})) {
        // the same face twice in one request
        for (const auto& key : p.files) blobs_->Remove(key);
        statuses.push_back({viid::kPathFaces, viid::kOk, "重复 / duplicate", f.face_id, ""});
        continue;
      }
      for (size_t n = 0; n < f.images.size(); ++n) {
        storage::CaptureFileRow img;
        img.n = int64_t(n);
        img.type = f.images[n].type;
        img.file = p.files[n];
        img.bytes = int64_t(f.images[n].data.size());
        img.width = f.images[n].width;
        img.height = f.images[n].height;
        CaptureRepo::InsertImage(conn, p.id, img);
      }
      for (size_t n = 0; n < f.clip.size(); ++n) {
        storage::CaptureFileRow frame;
        frame.n = int64_t(n);
        frame.offset_ms = int64_t(f.clip[n].offset_ms);
        frame.file = p.files[f.images.size() + n];
        frame.bytes = int64_t(f.clip[n].data.size());
        frame.width = f.clip[n].width;
        frame.height = f.clip[n].height;
        CaptureRepo::InsertClipFrame(conn, p.id, frame);
      }
      const auto* crop = f.Image(viid::kImageTypeFace);
      jobs.push_back({p.id, now, crop ? crop->data : f.images[0].data});
      statuses.push_back({viid::kPathFaces, viid::kOk, "正常 / OK", f.face_id, ""});
    }
    ViidCameraRepo::Touch(conn, device, now);
    tx.Commit();
  }
  for (const auto& e : parsed.errors)
    statuses.push_back({viid::kPathFaces, viid::kInvalidJsonContent, e.message, e.face_id, ""});
  stats_.received += int64_t(jobs.size());
  spdlog::info("viid: upload from camera {} ({}): {} faces stored, {} refused, {} images fetched",
               device, remote_addr, jobs.size(), parsed.errors.size(), fetched);
  for (const auto& e : parsed.errors)
    spdlog::info("viid: face '{}' of camera {} refused: {}", e.face_id, device, e.message);
  for (auto& j : jobs)
    queue_->Push({std::move(j.capture_id), std::string(j.face_jpeg.begin(), j.face_jpeg.end()),
                  j.enqueued_ms});
  ViidAnswer a;
  a.body = viid::ToJson(statuses);
  return a;
}

int64_t ViidService::RetainExpired(int64_t* before_ms) {
  const int months = deps_.retention_months ? deps_.retention_months() : options_.retention_months;
  const int64_t now = NowMs();
  const int64_t cutoff = months > 0 ? MonthsBefore(now, months) : now;
  if (before_ms) *before_ms = cutoff;
  int64_t total = 0;
  if (months <= 0) return 0;  // keep forever (server/retention/retention.h)
  for (int64_t n; !Stopping() && (n = RetainCaptures(cutoff)) > 0;) total += n;
  return total;
}

int64_t ViidService::RetainCaptures(int64_t before_ms, int64_t max) {
  std::vector<std::string> ids;
  std::vector<std::string> files;
  {
    auto conn = db_->Acquire();
    db::Transaction tx(conn);
    ids = CaptureRepo::OlderThan(conn, before_ms, max);
    for (const auto& id : ids) {
      for (auto& f : CaptureRepo::Delete(conn, id)) files.push_back(std::move(f));
      StrangerRepo::ForgetCapture(conn, id);
    }
    // A visitor cluster not seen since the cutoff goes too (its centroid is biometric data).
    const std::vector<int64_t> gone = StrangerRepo::DeleteIdle(conn, before_ms);
    clusters_->Remove(gone);
    tx.Commit();
  }
  // After the commit: a crash in between leaves files no row names, never the reverse.
  for (const auto& f : files) blobs_->Remove(f);
  return int64_t(ids.size());
}

json ViidService::Captures(const CaptureQuery& q) {
  storage::CaptureFilter f;
  f.from_ms = q.from_ms;
  f.to_ms = q.to_ms;
  f.device = q.device;
  f.person = q.person;
  f.outcome = q.outcome;
  f.state = q.state;
  f.stranger = q.stranger;
  f.buildings = q.buildings;
  auto conn = db_->Acquire();
  const int64_t total = CaptureRepo::Count(conn, f);
  json items = json::array();
  for (const auto& r : CaptureRepo::List(conn, f, q.limit, q.offset))
    items.push_back(CaptureJson(r));
  return {{"items", items}, {"total", total}, {"limit", q.limit}, {"offset", q.offset}};
}

json ViidService::Capture(const std::string& id) {
  auto conn = db_->Acquire();
  const auto row = CaptureRepo::Get(conn, id);
  if (!row) throw Error(ErrorCode::kNotFound, "不存在 / not found: capture " + id);
  json c = CaptureJson(*row);
  json imgs = json::array();
  for (const auto& i : CaptureRepo::Images(conn, id))
    imgs.push_back({{"n", i.n},
                    {"type", i.type},
                    {"bytes", i.bytes},
                    {"width", i.width},
                    {"height", i.height}});
  c["image_list"] = imgs;
  c["clip_frames"] = CaptureRepo::ClipFrameCount(conn, id);
  return c;
}

std::vector<uint8_t> ViidService::CaptureImage(const std::string& id, int n) {
  std::optional<std::string> file;
  {
    auto conn = db_->Acquire();
    file = CaptureRepo::ImageFile(conn, id, n);
  }
  if (!file)
    throw Error(ErrorCode::kNotFound, "不存在 / not found: image " + id + "/" + std::to_string(n));
  return crypto::Open(key_, blobs_->Get(*file), crypto::AsBytes(ImageAad(id, n)));
}

json ViidService::Clip(const std::string& id) {
  auto conn = db_->Acquire();
  if (!CaptureRepo::Exists(conn, id))
    throw Error(ErrorCode::kNotFound, "不存在 / not found: capture " + id);
  json frames = json::array();
  for (const auto& f : CaptureRepo::ClipFrames(conn, id))
    frames.push_back({{"n", f.n},
                      {"offset_ms", f.offset_ms},
                      {"bytes", f.bytes},
                      {"width", f.width},
                      {"height", f.height}});
  if (frames.empty())
    throw Error(ErrorCode::kNotFound, "该抓拍没有片段 / capture " + id + " has no clip");
  return {{"capture_id", id}, {"frames", frames}};
}

std::vector<uint8_t> ViidService::ClipFrame(const std::string& id, int n) {
  std::optional<std::string> file;
  {
    auto conn = db_->Acquire();
    file = CaptureRepo::ClipFile(conn, id, n);
  }
  if (!file)
    throw Error(ErrorCode::kNotFound,
                "不存在 / not found: clip frame " + id + "/" + std::to_string(n));
  return crypto::Open(key_, blobs_->Get(*file), crypto::AsBytes(ClipAad(id, n)));
}

json ViidService::Latest() {
  auto conn = db_->Acquire();
  json out = json::array();
  for (const auto& r : CaptureRepo::Latest(conn)) out.push_back(CaptureJson(r));
  return out;
}

}  // namespace anju::server
