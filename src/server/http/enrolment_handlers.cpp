// The HTTP shape of enrolment (enrolment/enrolment_service.h): the search by face, the
// quality check, one photo at a time (JSON with base64 or multipart), photos, feature
// codes made elsewhere, and the batch import.
#include <chrono>
#include <nlohmann/json.hpp>

#include "crypto/bytes.h"
#include "protocol/api_error.h"
#include "server/access/account_support.h"
#include "server/enrolment/enrolment_service.h"
#include "server/enrolment/face_gate.h"
#include "server/http/enrolment_status.h"
#include "server/http/handlers.h"
#include "server/http/router.h"
#include "server/http/thumbnail.h"

namespace anju::server {

using nlohmann::json;

namespace {

// A face image larger than this is refused with 413 before decoding (a phone photo is a few
// MiB; the HTTP body limit is 16 MiB for the batch import).
constexpr size_t kMaxImageBytes = 8u << 20;

// The uploaded image of the search and check routes, by the enrolment convention: JSON
// {"image": base64} or multipart file "image".
std::vector<uint8_t> UploadedImage(const Request& r) {
  std::vector<uint8_t> bytes;
  if (r.http.IsMultipartFormData()) {
    const http::FormPart* f = r.http.Part("image");
    if (!f) throw protocol::ApiError(400, "bad_request", "缺少 image 文件 / missing image");
    bytes.assign(f->content.begin(), f->content.end());
  } else {
    try {
      bytes = crypto::FromBase64(r.body["image"].get<std::string>());
    } catch (const Error&) {
      throw protocol::ApiError(400, "bad_request", "image 不是 base64 / image: bad base64");
    }
  }
  if (bytes.size() > kMaxImageBytes)
    throw protocol::ApiError(413, "too_large", "图片超过 8 MiB / image larger than 8 MiB");
  return bytes;
}

// The gate on BYTES; a file that is not an image is 422 bad_image (the caller sent the
// wrong thing, the request itself was well formed).
GateResult AssessUpload(FaceGate& gate, std::span<const uint8_t> bytes,
                        const AssessOptions& options) {
  if (gate.model_version().empty())
    throw protocol::ApiError(503, "unavailable", "未安装人脸模型 / no face models installed");
  try {
    return gate.Assess(bytes, options);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kBadImage || e.code() == ErrorCode::kInvalidArgument)
      throw protocol::ApiError(422, "bad_image",
                               std::string("无法解码图像 / not an image: ") + e.what());
    throw;
  }
}

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// 201 with the enrolment, or the refusal: {"error": {"code", "message", "reasons"? /
// "candidates"?}, "assessment"?} with its status.
Reply EnrolReply(const EnrolResult& r) {
  if (!r.refused) return Reply::Json(r.enrolled, 201);
  const auto api = protocol::FromError(*r.refused);
  json body = {{"error", {{"code", api.code()}, {"message", r.refused->what()}}}};
  for (const auto& [k, v] : r.details.items()) body["error"][k] = v;
  if (!r.assessment.is_null()) body["assessment"] = r.assessment;
  return Reply::Json(body, EnrolStatus(&*r.refused));
}

}  // namespace

void RegisterEnrolmentHandlers(Router& router, EnrolmentService& enrolment, FaceGate& gate,
                               std::function<void(const Principal&)> viewed) {
  router
      .Add("POST", "/api/v1/persons/search-by-face", "enrolment", Auth::kAdmin, "photos.read",
           "Search the archive by a face photo (JSON {\"image\": base64} or multipart field "
           "\"image\"; query k = 1..20, default 5): the largest face against every enrolled "
           "feature, best persons first with their scores and whether each reaches the match "
           "threshold (the recognition workers' normal level). 422 bad_image / no_face, 413 "
           "image over 8 MiB. Audited as a view (view.face_search)",
           [&enrolment, &gate, viewed](Request& r) {
             const auto t0 = std::chrono::steady_clock::now();
             const size_t k = size_t(r.QueryInt("k", 5, 1, 20));
             const auto bytes = UploadedImage(r);
             AssessOptions o;
             o.embed_always = true;
             o.liveness = false;  // a photo of a photo is a fine probe for a search
             const GateResult g = AssessUpload(gate, bytes, o);
             if (g.feature.values.empty())
               throw DetailedApiError(422, "no_face", "未检测到人脸 / no face in the photo",
                                      {{"reasons", ReasonsJson({"no_face"})}});
             json results = json::array();
             for (const FaceMatch& m : enrolment.Search(g.feature.values, k, ScopeOf(r.principal),
                                                        r.principal.name, r.principal.source))
               results.push_back({{"code", m.code},
                                  {"name", m.name ? json(*m.name) : json()},
                                  {"status", m.status ? json(*m.status) : json()},
                                  {"score", m.score},
                                  {"match", m.match}});
             viewed(r.principal);
             json q = g.ToJson();
             return Reply::Json({{"faces", g.faces},
                                 {"bbox", q["bbox"]},
                                 {"quality", q["quality"]},
                                 {"threshold", enrolment.match_threshold()},
                                 {"model_version", enrolment.model_version()},
                                 {"results", results},
                                 {"elapsed_ms", MsSince(t0)}});
           })
      .Query({{"k", JType::kInteger, "persons returned, 1..20 (default 5)"}})
      .Body(Obj({Req("image", Str("base64 JPEG / PNG"))}), BodyKind::kJsonOrMultipart);

  router
      .Add("POST", "/api/v1/faces/check", "enrolment", Auth::kAdmin, "enrol",
           "Quality check of a face photo without enrolling (the enrolment gate's verdict and "
           "reasons, each {code, message_zh, message_en}); nothing is stored. 422 bad_image, "
           "413 image over 8 MiB",
           [&gate](Request& r) {
             const auto t0 = std::chrono::steady_clock::now();
             const auto bytes = UploadedImage(r);
             const GateResult g = AssessUpload(gate, bytes, {});
             json q = g.ToJson();
             return Reply::Json({{"ok", g.reasons.empty()},
                                 {"face_found", g.box.area() > 0},
                                 {"faces", g.faces},
                                 {"bbox", q["bbox"]},
                                 {"quality", q["quality"]},
                                 {"liveness", g.liveness},
                                 {"reasons", ReasonsJson(g.reasons)},
                                 {"elapsed_ms", MsSince(t0)}});
           })
      .Body(Obj({Req("image", Str("base64 JPEG / PNG"))}), BodyKind::kJsonOrMultipart);

  router
      .Add("POST", "/api/v1/persons/{code}/photos", "enrolment", Auth::kAdmin, "enrol",
           "Enrol a face photo: JSON {\"image\": base64} or multipart field \"image\". 201, or "
           "422 quality_rejected with reasons (no_face, several_faces, too_small, blurred, "
           "too_dark, too_bright, not_frontal, eyes_closed, spoof), 409 consent_required / "
           "duplicate_face",
           [&enrolment](Request& r) {
             std::vector<uint8_t> bytes;
             bool accept = false;
             if (r.http.IsMultipartFormData()) {
               const http::FormPart* f = r.http.Part("image");
               if (!f)
                 throw protocol::ApiError(400, "bad_request", "缺少 image 文件 / missing image");
               bytes.assign(f->content.begin(), f->content.end());
               if (const http::FormPart* a = r.http.Part("accept_duplicate"))
                 accept = a->content == "true";
             } else {
               try {
                 bytes = crypto::FromBase64(r.body["image"].get<std::string>());
               } catch (const Error&) {
                 throw protocol::ApiError(400, "bad_request",
                                          "image 不是 base64 / image: bad base64");
               }
               accept = r.body.value("accept_duplicate", false);
             }
             return EnrolReply(enrolment.Enrol(r.Path("code"), bytes, accept, r.actor));
           })
      .Body(Obj({Req("image", Str("base64 JPEG / PNG")),
                 Opt("accept_duplicate", Bool("enrol even when the face matches another person"))}),
            BodyKind::kJsonOrMultipart);

  router
      .Add("GET", "/api/v1/persons/{code}/photos/{id}", "enrolment", Auth::kAdmin, "photos.read",
           "One enrolment photo (decrypted JPEG; audited)",
           [&enrolment](Request& r) {
             ThumbnailSize(r);  // a bad size: 400 before anything is read or audited
             const auto plain = enrolment.Photo(r.Path("code"), r.Path("id"), r.actor);
             return Reply::Jpeg(SizedImage(r, {plain.begin(), plain.end()}));
           })
      .Query({{"size", JType::kInteger, "a thumbnail: the longer side at most this (16-1024 px)"}})
      .Returns("image/jpeg", "the photo");

  router.Add("DELETE", "/api/v1/persons/{code}/photos/{id}", "enrolment", Auth::kAdmin, "enrol",
             "Delete one photo and its feature code (devices get the change)",
             [&enrolment](Request& r) {
               enrolment.DeletePhoto(r.Path("code"), r.Path("id"), r.actor);
               return Reply::Json({{"deleted", r.Path("id")}});
             });

  router
      .Add("POST", "/api/v1/persons/{code}/features", "enrolment", Auth::kAdmin, "enrol",
           "Import a feature code made elsewhere with the same model (migration from another "
           "system): base64 of DIM little-endian float32, L2-normalised. Consent and the "
           "duplicate check apply as for a photo",
           [&enrolment](Request& r) {
             return EnrolReply(
                 enrolment.ImportFeature(r.Path("code"), r.body["model_version"].get<std::string>(),
                                         r.body["feature"].get<std::string>(),
                                         r.body.value("accept_duplicate", false), r.actor));
           })
      .Body(Obj({Req("feature", Str("base64 of little-endian float32 values")),
                 Req("model_version", Str()), Opt("accept_duplicate", Bool())}));

  router
      .Add("POST", "/api/v1/imports", "enrolment", Auth::kAdmin, "enrol",
           "Batch import: CSV of people (header row; columns "
           "code,name,phone,id_number,minor,household_id,role,photos,consent_notice_version,"
           "consent_purpose,consent_evidence,guardian_name,guardian_relation; photos = file "
           "names separated by ';') with photos from photo_dir on the server and/or inline "
           "(photos: {file name: base64}). Runs in the background: 202 with the import id",
           [&enrolment](Request& r) {
             const auto [id, total] = enrolment.StartImport(r.body, r.actor, ScopeOf(r.principal));
             return Reply::Json({{"id", id},
                                 {"state", "running"},
                                 {"total", total},
                                 {"status_url", "/api/v1/imports/" + std::to_string(id)}},
                                202);
           })
      .Body(Obj({Req("csv", Str("UTF-8 CSV text with a header row")),
                 Opt("photo_dir", Str("folder on the server holding the photo files, inside the "
                                      "import folder (import_dir)")),
                 Opt("photos", Obj({}, "file name → base64 image").Open()),
                 Opt("accept_duplicates", Bool())}));

  router.Add("GET", "/api/v1/imports/{id}", "enrolment", Auth::kAdmin, "archive.read",
             "Progress and per-row results of an import", [&enrolment](Request& r) {
               return Reply::Json(ImportWithStatuses(enrolment.Import(r.Path("id"))));
             });
}

}  // namespace anju::server
