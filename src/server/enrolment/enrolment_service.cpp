#include "server/enrolment/enrolment_service.h"

#include <algorithm>

#include "core/clock.h"
#include "crypto/bytes.h"
#include "match/thresholds.h"
#include "protocol/feature_codec.h"
#include "server/access/account_support.h"
#include "server/audit/audit_log.h"
#include "server/audit/sealing.h"
#include "server/storage/person_repo.h"
#include "server/storage/photo_repo.h"
#include "server/storage/site_scope.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;
using storage::PersonRepo;
using storage::PhotoRepo;

namespace {

json J(const std::optional<int64_t>& v) {
  return v ? json(*v) : json();
}

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

EnrolResult Refused(Error why) {
  EnrolResult r;
  r.refused = std::move(why);
  return r;
}

EnrolResult Refused(ErrorCode code, const std::string& message, std::string reason = {}) {
  return Refused(Error(code, message, std::move(reason)));
}

}  // namespace

std::optional<Error> EnrolmentService::CheckEnrollable(db::Conn& conn, const std::string& code) {
  const auto s = PersonRepo::EnrolStateOf(conn, code);
  if (!s) return Error(ErrorCode::kNotFound, "不存在 / no person " + code);
  if (s->status != "active") return Error(ErrorCode::kConflict, "已迁出 / person has moved out");
  if (!s->consent)
    return Error(ErrorCode::kConflict,
                 "未登记同意，不能采集人脸 / no consent on record: record consent before "
                 "enrolling a face (R1.0.3.1)",
                 "consent_required");
  return std::nullopt;
}

EnrolResult EnrolmentService::Enrol(const std::string& code, std::span<const uint8_t> image,
                                    bool accept_duplicate, const std::string& actor) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string& version = d_.gate->model_version();
  if (version.empty() || !d_.index)
    return Refused(ErrorCode::kUnavailable, "未安装人脸模型 / no face models installed");
  {
    auto conn = d_.db->Acquire();
    if (auto refused = CheckEnrollable(conn, code)) return Refused(std::move(*refused));
  }
  GateResult g;
  try {
    g = d_.gate->Assess(image);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kBadImage || e.code() == ErrorCode::kInvalidArgument)
      return Refused(ErrorCode::kBadImage, std::string("无法解码图像 / not an image: ") + e.what(),
                     "bad_image");
    throw;
  }
  if (!g.reasons.empty()) {
    EnrolResult r = Refused(ErrorCode::kInvalidArgument,
                            "照片不合格 / photo refused by the quality gate", "quality_rejected");
    r.details["reasons"] = g.reasons;
    r.assessment = g.ToJson();
    return r;
  }
  const double gate_ms = MsSince(t0);
  EnrolResult result =
      StoreTemplate(code, g.feature.values, image, g.ToJson(), accept_duplicate, actor, t0);
  if (!result.refused) result.enrolled["gate_ms"] = gate_ms;
  return result;
}

EnrolResult EnrolmentService::ImportFeature(const std::string& code,
                                            const std::string& model_version,
                                            const std::string& feature_b64, bool accept_duplicate,
                                            const std::string& actor) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string& version = d_.gate->model_version();
  if (version.empty() || !d_.index)
    throw Error(ErrorCode::kUnavailable, "未安装人脸模型 / no face models installed");
  if (model_version != version)
    throw Error(ErrorCode::kConflict,
                "模型版本不一致 / model version differs from the server's " + version);
  const std::vector<float> f = protocol::DecodePlainFeature(feature_b64, d_.index->options().dim);
  {
    auto conn = d_.db->Acquire();
    if (auto refused = CheckEnrollable(conn, code)) return Refused(std::move(*refused));
  }
  return StoreTemplate(code, f, {}, json::object(), accept_duplicate, actor, t0);
}

EnrolResult EnrolmentService::StoreTemplate(const std::string& code, std::span<const float> feature,
                                            std::span<const uint8_t> image, const json& assessment,
                                            bool accept_duplicate, const std::string& actor,
                                            std::chrono::steady_clock::time_point t0) {
  const std::string& version = d_.gate->model_version();
  const auto dups =
      match::FindDuplicates(*d_.index, feature, version, d_.duplicate_threshold, code);
  json candidates = json::array();
  for (const auto& c : dups) candidates.push_back({{"person", c.person}, {"score", c.score}});
  if (!dups.empty() && !accept_duplicate) {
    EnrolResult r = Refused(ErrorCode::kConflict,
                            "此人脸已登记在其他档案 / this face is already enrolled as another "
                            "person (send accept_duplicate=true to enrol anyway)",
                            "duplicate_face");
    r.details["candidates"] = candidates;
    return r;
  }
  // The photo blob first (sealed, durable when Put returns), then the rows in one
  // transaction; a failed commit removes the blob again.
  std::string name, key;
  if (!image.empty()) {
    name = code + "/" + crypto::ToHex(crypto::RandomBytes(12)) + ".jpg.sealed";
    key = PhotoRepo::BlobKey(name);
    d_.blobs->Put(key, SealPhoto(d_.data_key, name, image));
  }
  auto remove_photo = [&] {
    if (key.empty()) return;
    try {
      d_.blobs->Remove(key);
    } catch (const std::exception&) {
      // An orphan no row names: unreadable without the key, harmless.
    }
  };
  std::optional<int64_t> photo_id;
  int64_t feature_id = 0;
  try {
    auto conn = d_.db->Acquire();
    if (auto refused = CheckEnrollable(conn, code)) {
      remove_photo();
      return Refused(std::move(*refused));
    }
    db::Transaction tx(conn);
    const auto pid = PersonRepo::IdByCode(conn, code);
    if (!pid) NotFound("person " + code);
    const bool first = PhotoRepo::CountFeatures(conn, *pid) == 0;
    if (!image.empty())
      photo_id = PhotoRepo::InsertPhoto(conn, *pid, name, int64_t(image.size()), assessment.dump(),
                                        NowMs(), actor);
    feature_id = PhotoRepo::InsertFeature(conn, *pid, photo_id, version,
                                          SealFeatureAtRest(d_.data_key, code, feature), NowMs());
    anju::server::History(conn, *pid, first ? "enrolled" : "template_added", actor,
                          {{"photo", J(photo_id)}, {"template", feature_id}});
    Audit(conn, actor, image.empty() ? "feature_import" : "enrol", "persons/" + code,
          {{"photo", J(photo_id)}, {"duplicates_accepted", candidates}});
    d_.gallery->PersonChanged(conn, *pid, first ? "enrolled" : "new_photo");
    tx.Commit();
  } catch (...) {
    remove_photo();
    throw;
  }
  d_.index->Put(code, match::TemplateId(feature_id), feature, version);
  EnrolResult r;
  r.enrolled = {{"person", code},
                {"photo_id", J(photo_id)},
                {"template", "t-" + std::to_string(feature_id)},
                {"model_version", version},
                {"assessment", assessment},
                {"duplicates", candidates},
                {"elapsed_ms", MsSince(t0)}};
  return r;
}

crypto::Bytes EnrolmentService::ReadPhoto(const std::string& name) {
  return OpenPhoto(d_.data_key, name, d_.blobs->Get(PhotoRepo::BlobKey(name)));
}

std::vector<uint8_t> EnrolmentService::Photo(const std::string& code, const std::string& id,
                                             const std::string& actor) {
  std::string name;
  {
    auto conn = d_.db->Acquire();
    const auto pid = PersonRepo::IdByCode(conn, code);
    if (!pid) NotFound("person " + code);
    const auto photo = PhotoRepo::Photo(conn, id, *pid);
    if (!photo) NotFound("photo " + id);
    name = photo->second;
    Audit(conn, actor, "photo_view", "persons/" + code, {{"photo", id}});
  }
  const auto plain = ReadPhoto(name);
  return {plain.begin(), plain.end()};
}

void EnrolmentService::DeletePhoto(const std::string& code, const std::string& id,
                                   const std::string& actor) {
  std::string key;
  std::vector<int64_t> features;
  {
    auto conn = d_.db->Acquire();
    db::Transaction tx(conn);
    const auto pid = PersonRepo::IdByCode(conn, code);
    if (!pid) NotFound("person " + code);
    const auto photo = PhotoRepo::Photo(conn, id, *pid);
    if (!photo) NotFound("photo " + id);
    key = PhotoRepo::BlobKey(photo->second);
    features = PhotoRepo::DeletePhoto(conn, photo->first);
    d_.gallery->PersonChanged(conn, *pid, "photo_deleted");
    anju::server::History(conn, *pid, "photo_deleted", actor, {{"photo", photo->first}});
    Audit(conn, actor, "photo_delete", "persons/" + code, {{"photo", photo->first}});
    tx.Commit();
  }
  try {
    d_.blobs->Remove(key);
  } catch (const std::exception&) {
    // The rows are gone; the sealed file alone is unreadable without them and the key.
  }
  if (d_.index)
    for (int64_t f : features) d_.index->RemoveTemplate(match::TemplateId(f));
}

std::vector<FaceMatch> EnrolmentService::Search(std::span<const float> feature, size_t k,
                                                const Scope& scope, const std::string& actor,
                                                const std::string& source) {
  // An account limited to sites sees only its sites' persons: rank more candidates and
  // keep the visible ones.
  const SiteScope site_scope(scope);
  std::vector<match::Candidate> ranked;
  if (d_.index) {
    match::SearchOptions so;
    so.k = site_scope.unscoped() ? k : std::max<size_t>(k * 50, 500);
    ranked = d_.index->Search(feature, d_.gate->model_version(), so);
  }
  std::vector<FaceMatch> out;
  json codes = json::array();
  auto conn = d_.db->Acquire();
  for (const auto& c : ranked) {
    if (out.size() >= k) break;
    if (!site_scope.PersonCodeVisible(conn, c.person)) continue;
    FaceMatch m;
    m.code = c.person;
    if (const auto known = PersonRepo::NameAndStatus(conn, c.person)) {
      m.name = known->first;
      m.status = known->second;
    }
    m.score = c.score;
    m.match = c.score >= d_.match_threshold;
    out.push_back(std::move(m));
    codes.push_back(c.person);
  }
  // The answer names persons and scores their likeness to a face: a view of their
  // archives by face (R4.2.2.1), counted for the risk warning by the caller.
  Audit(conn, AuditEntry{actor, source, "view.face_search", "persons", "ok", {{"results", codes}}});
  return out;
}

}  // namespace anju::server
