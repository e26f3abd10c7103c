#include "server/viid/capture_store.h"

#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/uuid.h"
#include "crypto/bytes.h"
#include "crypto/envelope.h"
#include "server/retention/retention.h"
#include "server/storage/capture_repo.h"
#include "server/storage/viid_camera_repo.h"
#include "server/viid/common.h"

namespace anju::server {

using nlohmann::json;
namespace viid = protocol::viid;
using cameras::ClipAad;
using cameras::ImageAad;
using cameras::NowMs;
using storage::CaptureRepo;
using storage::ViidCameraRepo;

namespace {

CaptureRecord Record(storage::CaptureRow r) {
  CaptureRecord c;
  c.id = std::move(r.id);
  c.device_id = std::move(r.device_id);
  c.face_id = std::move(r.face_id);
  c.time_ms = r.time_ms;
  c.received_ms = r.received_ms;
  c.box = json::parse(r.box, nullptr, false);
  c.images = r.images;
  c.state = std::move(r.state);
  c.outcome = std::move(r.outcome);
  c.person = std::move(r.person);
  c.score = r.score;
  c.second_score = r.second_score;
  c.stranger_id = r.stranger_id;
  c.quality = json::parse(r.quality, nullptr, false);
  c.reasons = json::parse(r.reasons, nullptr, false);
  c.dark = r.dark;
  c.recognised_ms = r.recognised_ms;
  c.place = std::move(r.place);
  c.building_id = r.building_id;
  c.unit_id = r.unit_id;
  c.face_image = r.face_image;
  return c;
}

}  // namespace

std::string CaptureStore::ImageKey(const std::string& id, const std::string& name,
                                   int64_t time_ms) {
  const std::string ymd = viid::FormatTime(time_ms, 0).substr(0, 8);
  return "captures/" + ymd.substr(0, 4) + "/" + ymd.substr(4, 2) + "/" + ymd.substr(6, 2) + "/" +
         id + "-" + name + ".jpg.sealed";
}

CaptureStore::Stored CaptureStore::Store(const std::string& device, const viid::FaceList& faces,
                                         int64_t now) {
  Stored out;
  auto& statuses = out.statuses;
  auto& jobs = out.jobs;
  struct Incoming {
    std::string id;
    const viid::FaceObject* face;
    int64_t time_ms;
    std::vector<std::string> files;  // blob keys
  };
  std::vector<Incoming> pending;
  for (const auto& f : faces.faces) {
    {
      auto conn = ctx_.db().Acquire();
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
    Incoming p{NewUuid(), &f, t, {}};
    // The sealed images and clip frames, durable in the blob store (with their
    // directories) before the rows naming them commit.
    std::vector<crypto::Bytes> sealed;
    std::vector<std::string> keys;
    for (size_t n = 0; n < f.images.size(); ++n) {
      sealed.push_back(
          crypto::Seal(ctx_.key(), f.images[n].data, crypto::AsBytes(ImageAad(p.id, int(n)))));
      keys.push_back(ImageKey(p.id, std::to_string(n), t));
    }
    for (size_t n = 0; n < f.clip.size(); ++n) {
      sealed.push_back(
          crypto::Seal(ctx_.key(), f.clip[n].data, crypto::AsBytes(ClipAad(p.id, int(n)))));
      keys.push_back(ImageKey(p.id, "clip" + std::to_string(n), t));
    }
    try {
      std::vector<std::pair<std::string, std::span<const uint8_t>>> batch;
      for (size_t i = 0; i < keys.size(); ++i) batch.emplace_back(keys[i], sealed[i]);
      ctx_.blobs().PutMany(batch);
      p.files = std::move(keys);
    } catch (const Error& e) {
      for (const auto& key : keys) ctx_.blobs().Remove(key);
      spdlog::error("viid: cannot store capture: {}", e.what());
      statuses.push_back(
          {viid::kPathFaces, viid::kDeviceBusy, "存储失败 / storage failed", f.face_id, ""});
      continue;
    }
    pending.push_back(std::move(p));
  }
  if (!pending.empty()) {
    auto conn = ctx_.db().Acquire();
    db::Transaction tx(conn);
    for (const auto& p : pending) {
      const auto& f = *p.face;
      const json box = {f.left_top_x, f.left_top_y, f.right_btm_x, f.right_btm_y};
      if (!CaptureRepo::Insert(conn, {p.id, device, f.face_id, p.time_ms, now, box.dump(),
                                      int64_t(f.images.size())})) {
        // the same face twice in one request
        for (const auto& key : p.files) ctx_.blobs().Remove(key);
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
  return out;
}

int64_t CaptureStore::RetainExpired(int64_t* before_ms) {
  const int months = ctx_.deps().retention_months ? ctx_.deps().retention_months()
                                                  : ctx_.options().retention_months;
  const int64_t now = NowMs();
  const int64_t cutoff = months > 0 ? MonthsBefore(now, months) : now;
  if (before_ms) *before_ms = cutoff;
  int64_t total = 0;
  {
    // PostgreSQL: the coming months' partitions (R3.3.2.5; storage/partitions.h).
    auto conn = ctx_.db().Acquire();
    CaptureRepo::EnsurePartitions(conn, now);
  }
  if (months <= 0) return 0;  // keep forever (server/retention/retention.h)
  // Whole months first (PostgreSQL), then what is left before the cutoff row by row.
  for (int64_t n; !ctx_.Stopping() && (n = RetainMonth(cutoff)) >= 0;) total += n;
  for (int64_t n; !ctx_.Stopping() && (n = Retain(cutoff)) > 0;) total += n;
  return total;
}

int64_t CaptureStore::RetainMonth(int64_t before_ms) {
  std::optional<CaptureRepo::DroppedMonth> month;
  {
    auto conn = ctx_.db().Acquire();
    db::Transaction tx(conn);
    month = CaptureRepo::DropMonthBefore(conn, before_ms);
    if (!month) return -1;
    // What Retain does per capture besides deleting it.
    strangers_.Forget(conn, month->ids, before_ms);
    tx.Commit();
  }
  for (const auto& f : month->files) ctx_.blobs().Remove(f);
  spdlog::info("viid: retention dropped the captures of {} ({} captures, {} files)",
               month->month.suffix, month->ids.size(), month->files.size());
  return int64_t(month->ids.size());
}

int64_t CaptureStore::Retain(int64_t before_ms, int64_t max) {
  std::vector<std::string> ids;
  std::vector<std::string> files;
  {
    auto conn = ctx_.db().Acquire();
    db::Transaction tx(conn);
    ids = CaptureRepo::OlderThan(conn, before_ms, max);
    for (const auto& id : ids)
      for (auto& f : CaptureRepo::Delete(conn, id)) files.push_back(std::move(f));
    // A visitor cluster not seen since the cutoff goes too (its centroid is biometric data).
    strangers_.Forget(conn, ids, before_ms);
    tx.Commit();
  }
  // After the commit: a crash in between leaves files no row names, never the reverse.
  for (const auto& f : files) ctx_.blobs().Remove(f);
  return int64_t(ids.size());
}

CapturePage CaptureStore::List(const CaptureQuery& q) {
  storage::CaptureFilter f;
  f.from_ms = q.from_ms;
  f.to_ms = q.to_ms;
  f.device = q.device;
  f.person = q.person;
  f.outcome = q.outcome;
  f.state = q.state;
  f.stranger = q.stranger;
  f.buildings = q.buildings;
  auto conn = ctx_.db().Acquire();
  CapturePage page;
  page.total = CaptureRepo::Count(conn, f);
  page.limit = q.limit;
  page.offset = q.offset;
  for (auto& r : CaptureRepo::List(conn, f, q.limit, q.offset))
    page.items.push_back(Record(std::move(r)));
  return page;
}

CaptureDetail CaptureStore::Get(const std::string& id) {
  auto conn = ctx_.db().Acquire();
  return GetOn(conn, id);
}

CaptureDetail CaptureStore::GetOn(db::Conn& conn, const std::string& id) {
  auto row = CaptureRepo::Get(conn, id);
  if (!row) throw Error(ErrorCode::kNotFound, "不存在 / not found: capture " + id);
  CaptureDetail d;
  d.capture = Record(std::move(*row));
  for (auto& i : CaptureRepo::Images(conn, id))
    d.image_list.push_back({i.n, std::move(i.type), i.bytes, i.width, i.height});
  d.clip_frames = CaptureRepo::ClipFrameCount(conn, id);
  return d;
}

std::vector<uint8_t> CaptureStore::Image(const std::string& id, int n) {
  std::optional<std::string> file;
  {
    auto conn = ctx_.db().Acquire();
    file = CaptureRepo::ImageFile(conn, id, n);
  }
  if (!file)
    throw Error(ErrorCode::kNotFound, "不存在 / not found: image " + id + "/" + std::to_string(n));
  return crypto::Open(ctx_.key(), ctx_.blobs().Get(*file), crypto::AsBytes(ImageAad(id, n)));
}

CaptureClip CaptureStore::Clip(const std::string& id) {
  auto conn = ctx_.db().Acquire();
  if (!CaptureRepo::Exists(conn, id))
    throw Error(ErrorCode::kNotFound, "不存在 / not found: capture " + id);
  CaptureClip clip{id, {}};
  for (const auto& f : CaptureRepo::ClipFrames(conn, id))
    clip.frames.push_back({f.n, f.offset_ms, f.bytes, f.width, f.height});
  if (clip.frames.empty())
    throw Error(ErrorCode::kNotFound, "该抓拍没有片段 / capture " + id + " has no clip");
  return clip;
}

std::vector<uint8_t> CaptureStore::ClipFrame(const std::string& id, int n) {
  std::optional<std::string> file;
  {
    auto conn = ctx_.db().Acquire();
    file = CaptureRepo::ClipFile(conn, id, n);
  }
  if (!file)
    throw Error(ErrorCode::kNotFound,
                "不存在 / not found: clip frame " + id + "/" + std::to_string(n));
  return crypto::Open(ctx_.key(), ctx_.blobs().Get(*file), crypto::AsBytes(ClipAad(id, n)));
}

std::vector<CaptureRecord> CaptureStore::Latest() {
  auto conn = ctx_.db().Acquire();
  std::vector<CaptureRecord> out;
  for (auto& r : CaptureRepo::Latest(conn)) out.push_back(Record(std::move(r)));
  return out;
}

// ---- recognition -----------------------------------------------------------------------

std::optional<CaptureStore::Pending> CaptureStore::PendingCapture(const std::string& id) {
  auto conn = ctx_.db().Acquire();
  const auto head = CaptureRepo::Head(conn, id);
  if (!head || head->state != "queued") return std::nullopt;
  return Pending{head->device_id, head->time_ms};
}

std::vector<uint8_t> CaptureStore::FaceCrop(const std::string& id) {
  std::optional<storage::CaptureFileRow> best;
  {
    auto conn = ctx_.db().Acquire();
    best = CaptureRepo::BestImage(conn, id);
  }
  if (!best) return {};
  return crypto::Open(ctx_.key(), ctx_.blobs().Get(best->file),
                      crypto::AsBytes(ImageAad(id, int(best->n))));
}

bool CaptureStore::Finish(const std::string& id, const RecognitionResult& r, int64_t now_ms,
                          const std::function<void(db::Conn&, const CaptureDetail&)>& also,
                          CaptureDetail* detail) {
  auto conn = ctx_.db().Acquire();
  db::Transaction tx(conn);
  if (!CaptureRepo::SaveResult(
          conn, id,
          {r.state, r.outcome, r.person, r.score, r.second_score, r.stranger_id, r.quality.dump(),
           r.reasons.dump(), r.dark, r.feature_sealed, now_ms}))
    return false;
  if (also || detail) {
    CaptureDetail d = GetOn(conn, id);
    if (also) also(conn, d);
    if (detail) *detail = std::move(d);
  }
  tx.Commit();
  return true;
}

bool CaptureStore::MarkFailed(const std::string& id, const std::string& reason, int64_t now_ms) {
  auto conn = ctx_.db().Acquire();
  return CaptureRepo::MarkFailed(
      conn, id, json::array({reason}).dump(-1, ' ', false, json::error_handler_t::replace), now_ms);
}

std::vector<std::string> CaptureStore::Queued() {
  auto conn = ctx_.db().Acquire();
  return CaptureRepo::Queued(conn);
}

std::vector<std::string> CaptureStore::QueuedBefore(int64_t before_ms, int64_t max) {
  auto conn = ctx_.db().Acquire();
  return CaptureRepo::QueuedBefore(conn, before_ms, max);
}

std::optional<int64_t> CaptureStore::LastSeen(const std::string& person) {
  auto conn = ctx_.db().Acquire();
  return CaptureRepo::LastSeen(conn, person);
}

}  // namespace anju::server
