// Enrolment: one photo at a time (JSON with base64 or multipart) and
// the batch import (CSV of people + photos from a server folder or inline), each photo
// through the quality gate and the duplicate check, sealed on disk with the data key.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "crypto/keyfile.h"
#include "match/thresholds.h"
#include "protocol/api_error.h"
#include "server/audit/audit_log.h"
#include "server/audit/sealing.h"
#include "server/server_state.h"
#include "server/storage/site_scope.h"
#include "server/thumbnail.h"
#include "store/gallery.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A CSV photo name resolved inside the import's photo_dir, or nullopt: an absolute name
// (photo_dir / "/etc/x.jpg" is "/etc/x.jpg"), ".." or a symbolic link leading out of the
// folder would let an import read any image on the server (R4.2.1.1).
std::optional<fs::path> PhotoInside(const fs::path& dir, const std::string& name) {
  if (dir.empty() || name.empty()) return std::nullopt;
  const fs::path rel(name);
  if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory()) return std::nullopt;
  for (const auto& part : rel)
    if (part == "..") return std::nullopt;
  std::error_code ec;
  const fs::path root = fs::weakly_canonical(dir, ec);
  if (ec) return std::nullopt;
  const fs::path file = fs::weakly_canonical(root / rel, ec);
  if (ec) return std::nullopt;
  const fs::path inside = file.lexically_relative(root);
  if (inside.empty() || *inside.begin() == ".." || inside == ".") return std::nullopt;
  return file;
}

json ErrorJson(const std::string& code, const std::string& message) {
  return {{"error", {{"code", code}, {"message", message}}}};
}

// RFC 4180 CSV: quoted fields may hold commas, quotes ("") and line breaks.
std::vector<std::vector<std::string>> ParseCsv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  size_t i = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // BOM from Excel
  for (; i < text.size(); ++i) {
    const char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"')
        field += '"', ++i;
      else if (c == '"')
        quoted = false;
      else
        field += c;
      continue;
    }
    if (c == '"')
      quoted = true, any = true;
    else if (c == ',')
      row.push_back(std::move(field)), field.clear(), any = true;
    else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      if (any || !field.empty()) {
        row.push_back(std::move(field));
        rows.push_back(std::move(row));
      }
      row.clear(), field.clear(), any = false;
    } else {
      field += c, any = true;
    }
  }
  if (quoted) throw protocol::ApiError(400, "bad_request", "CSV 引号未闭合 / unterminated quote");
  if (any || !field.empty()) {
    row.push_back(std::move(field));
    rows.push_back(std::move(row));
  }
  return rows;
}

const std::vector<std::string> kImportColumns = {"code",
                                                 "name",
                                                 "phone",
                                                 "id_number",
                                                 "minor",
                                                 "household_id",
                                                 "role",
                                                 "photos",
                                                 "consent_notice_version",
                                                 "consent_purpose",
                                                 "consent_evidence",
                                                 "guardian_name",
                                                 "guardian_relation"};

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

}  // namespace

std::pair<int, json> Server::Impl::Enrol(const std::string& code, std::span<const uint8_t> image,
                                         bool accept_duplicate, const std::string& actor) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::string& version = gate->model_version();
  if (version.empty() || !index)
    return {503, ErrorJson("unavailable", "未安装人脸模型 / no face models installed")};
  {
    auto conn = db->Acquire();
    if (auto refused = CheckEnrollable(conn, code)) return *refused;
  }
  GateResult g;
  try {
    g = gate->Assess(image);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::kBadImage || e.code() == ErrorCode::kInvalidArgument)
      return {400, ErrorJson("bad_image", std::string("无法解码图像 / not an image: ") + e.what())};
    throw;
  }
  if (!g.reasons.empty()) {
    json body = ErrorJson("quality_rejected", "照片不合格 / photo refused by the quality gate");
    body["error"]["reasons"] = g.reasons;
    body["assessment"] = g.ToJson();
    return {422, body};
  }
  const double gate_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  auto result =
      StoreTemplate(code, g.feature.values, image, g.ToJson(), accept_duplicate, actor, t0);
  if (result.first == 201) result.second["gate_ms"] = gate_ms;
  return result;
}

std::optional<std::pair<int, json>> Server::Impl::CheckEnrollable(Conn& conn, const std::string& code) {
  Stmt s(conn,
         "SELECT status, EXISTS(SELECT 1 FROM consents c WHERE c.person_id = p.id AND "
         "c.withdrawn_ms IS NULL) FROM persons p WHERE code = ?");
  s.Bind(1, code);
  if (!s.Step()) return std::pair{404, ErrorJson("not_found", "不存在 / no person " + code)};
  if (s.Text(0) != "active")
    return std::pair{409, ErrorJson("conflict", "已迁出 / person has moved out")};
  if (!s.Int(1))
    return std::pair{409, ErrorJson("consent_required",
                                    "未登记同意，不能采集人脸 / no consent on record: record "
                                    "consent before enrolling a face (R1.0.3.1)")};
  return std::nullopt;
}

crypto::Bytes Server::Impl::ReadPhoto(const std::string& name) {
  std::ifstream in(options.data_dir / "photos" / name, std::ios::binary);
  const std::string sealed((std::istreambuf_iterator<char>(in)), {});
  return OpenPhoto(keys.data_key, name, crypto::AsBytes(sealed));
}

std::pair<int, json> Server::Impl::StoreTemplate(const std::string& code,
                                                 std::span<const float> feature,
                                                 std::span<const uint8_t> image,
                                                 const json& assessment, bool accept_duplicate,
                                                 const std::string& actor,
                                                 std::chrono::steady_clock::time_point t0) {
  const std::string& version = gate->model_version();
  const auto dups = match::FindDuplicates(*index, feature, version, duplicate_threshold, code);
  json candidates = json::array();
  for (const auto& c : dups) candidates.push_back({{"person", c.person}, {"score", c.score}});
  if (!dups.empty() && !accept_duplicate) {
    json body = ErrorJson("duplicate_face",
                          "此人脸已登记在其他档案 / this face is already enrolled as another "
                          "person (send accept_duplicate=true to enrol anyway)");
    body["error"]["candidates"] = candidates;
    return {409, body};
  }
  // Photo file first (sealed, fsynced by WriteSecretFile), then the rows in one
  // transaction; a failed commit removes the file again.
  std::string name;
  fs::path file;
  if (!image.empty()) {
    name = code + "/" + crypto::ToHex(crypto::RandomBytes(12)) + ".jpg.sealed";
    file = options.data_dir / "photos" / name;
    fs::create_directories(file.parent_path());
    const crypto::Bytes sealed = SealPhoto(keys.data_key, name, image);
    crypto::WriteSecretFile(
        file, std::string_view(reinterpret_cast<const char*>(sealed.data()), sealed.size()));
  }
  std::optional<int64_t> photo_id;
  int64_t feature_id = 0;
  try {
    auto conn = db->Acquire();
    if (auto refused = CheckEnrollable(conn, code)) {
      if (!file.empty()) fs::remove(file);
      return *refused;
    }
    Transaction tx(conn);
    const int64_t pid = PersonId(conn, code);
    Stmt c(conn, "SELECT COUNT(*) FROM features WHERE person_id = ?");
    c.Bind(1, pid).Step();
    const bool first = c.Int(0) == 0;
    if (!image.empty()) {
      Stmt p(conn,
             "INSERT INTO photos(person_id, file, bytes, quality, created_ms, operator) "
             "VALUES(?,?,?,?,?,?)");
      p.Bind(1, pid)
          .Bind(2, name)
          .Bind(3, int64_t(image.size()))
          .Bind(4, assessment.dump())
          .Bind(5, NowMs())
          .Bind(6, actor)
          .Run();
      photo_id = conn.LastInsertId();
    }
    Stmt f(conn,
           "INSERT INTO features(person_id, photo_id, model_version, sealed, created_ms) "
           "VALUES(?,?,?,?,?)");
    f.Bind(1, pid)
        .Bind(2, photo_id)
        .Bind(3, version)
        .Bind(4, std::span<const uint8_t>(SealFeatureAtRest(keys.data_key, code, feature)))
        .Bind(5, NowMs())
        .Run();
    feature_id = conn.LastInsertId();
    History(conn, pid, first ? "enrolled" : "template_added", actor,
            {{"photo", J(photo_id)}, {"template", feature_id}});
    Audit(conn, actor, image.empty() ? "feature_import" : "enrol", "persons/" + code,
          {{"photo", J(photo_id)}, {"duplicates_accepted", candidates}});
    sync->PersonChanged(conn, pid, first ? "enrolled" : "new_photo");
    tx.Commit();
  } catch (...) {
    std::error_code ec;
    if (!file.empty()) fs::remove(file, ec);
    throw;
  }
  index->Put(code, match::TemplateId(feature_id), feature, version);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  return {201,
          {{"person", code},
           {"photo_id", J(photo_id)},
           {"template", "t-" + std::to_string(feature_id)},
           {"model_version", version},
           {"assessment", assessment},
           {"duplicates", candidates},
           {"elapsed_ms", ms}}};
}

void Server::Impl::RunImport(int64_t import_id, json req, std::string actor,
                             std::vector<int64_t> sites) {
  const SiteScope scope(std::move(sites));
  json results = json::array();
  auto save = [&](const char* state, bool finished) {
    auto conn = db->Acquire();
    Stmt s(conn,
           "UPDATE imports SET state = ?, done = ?, results = ?, finished_ms = ? "
           "WHERE id = ?");
    s.Bind(1, state).Bind(2, int64_t(results.size())).Bind(3, results.dump());
    if (finished)
      s.Bind(4, NowMs());
    else
      s.BindNull(4);
    s.Bind(5, import_id).Run();
  };
  try {
    const auto rows = ParseCsv(req["csv"].get<std::string>());
    const auto& header = rows.at(0);
    auto col = [&](const std::vector<std::string>& row, const std::string& name) -> std::string {
      for (size_t i = 0; i < header.size(); ++i)
        if (header[i] == name) return i < row.size() ? row[i] : "";
      return "";
    };
    const fs::path photo_dir = req.value("photo_dir", "");
    const json inline_photos = req.value("photos", json::object());
    const bool accept_dup = req.value("accept_duplicates", false);
    for (size_t n = 1; n < rows.size() && !stopping; ++n) {
      const auto& row = rows[n];
      json out = {{"row", n + 1}};
      try {
        std::string code = col(row, "code");
        const std::string name = col(row, "name");
        if (name.empty()) throw protocol::ApiError(400, "bad_request", "name 为空 / name is empty");
        if (code.empty()) code = "P" + crypto::ToHex(crypto::RandomBytes(5));
        if (!store::IsValidIdentityCode(code))
          throw protocol::ApiError(400, "bad_request", "编号无效 / invalid code " + code);
        out["code"] = code;
        {
          auto conn = db->Acquire();
          Transaction tx(conn);
          Stmt e(conn, "SELECT id FROM persons WHERE code = ?");
          e.Bind(1, code);
          const bool exists = e.Step();
          // A scoped account imports only into households of its sites (and touches only
          // persons it sees): other rows fail, as a missing household or person would.
          if (!scope.unscoped()) {
            const std::string hh = col(row, "household_id");
            if (hh.empty())
              throw protocol::ApiError(
                  400, "bad_request",
                  "须指定本小区的住户 / household_id required (account limited to sites)");
            if (hh.size() > 18 || hh.find_first_not_of("0123456789") != std::string::npos ||
                !scope.HouseholdVisible(conn, std::stoll(hh)))
              NotFound("household " + hh);
            if (exists && !scope.PersonVisible(conn, e.Int(0))) NotFound("person " + code);
          }
          int64_t pid = 0;
          if (exists) {
            pid = e.Int(0);
            out["person"] = "existing";
          } else {
            const int64_t now = NowMs();
            Stmt s(conn,
                   "INSERT INTO persons(code, name, id_number_sealed, phone, minor, moved_in_ms, "
                   "created_ms, updated_ms) VALUES(?,?,?,?,?,?,?,?)");
            const std::string idn = col(row, "id_number");
            s.Bind(1, code).Bind(2, name);
            if (idn.empty())
              s.BindNull(3);
            else
              s.Bind(3, std::span<const uint8_t>(SealIdNumber(keys.data_key, code, idn)));
            const std::string minor = col(row, "minor");
            s.Bind(4, col(row, "phone"))
                .Bind(5, int64_t(minor == "1" || minor == "true" || minor == "yes"))
                .Bind(6, now)
                .Bind(7, now)
                .Bind(8, now)
                .Run();
            pid = conn.LastInsertId();
            History(conn, pid, "moved_in", actor, {{"import", import_id}});
            out["person"] = "created";
          }
          if (const std::string hh = col(row, "household_id"); !hh.empty()) {
            Stmt m(conn,
                   "INSERT OR IGNORE INTO household_members(household_id, person_id, role, "
                   "since_ms) VALUES(?,?,?,?)");
            const std::string role = col(row, "role").empty() ? "tenant" : col(row, "role");
            try {
              m.Bind(1, int64_t(std::stoll(hh))).Bind(2, pid).Bind(3, role).Bind(4, NowMs()).Run();
            } catch (const std::exception&) {
              throw protocol::ApiError(400, "bad_request",
                                       "住户或角色无效 / bad household_id or role");
            }
          }
          if (const std::string nv = col(row, "consent_notice_version"); !nv.empty()) {
            Stmt c(conn,
                   "INSERT INTO consents(person_id, notice_version, purpose, granted_ms, operator, "
                   "evidence_file, guardian_name, guardian_relation) VALUES(?,?,?,?,?,?,?,?)");
            c.Bind(1, pid)
                .Bind(2, nv)
                .Bind(3, col(row, "consent_purpose"))
                .Bind(4, NowMs())
                .Bind(5, actor)
                .Bind(6, col(row, "consent_evidence"))
                .Bind(7, col(row, "guardian_name"))
                .Bind(8, col(row, "guardian_relation"))
                .Run();
            History(conn, pid, "consent_granted", actor, {{"import", import_id}});
          }
          tx.Commit();
        }
        json photos = json::array();
        std::stringstream list(col(row, "photos"));
        std::string file;
        bool all_ok = true;
        while (std::getline(list, file, ';')) {
          if (file.empty()) continue;
          json pr = {{"file", file}};
          std::vector<uint8_t> bytes;
          if (inline_photos.contains(file)) {
            bytes = crypto::FromBase64(inline_photos[file].get<std::string>());
          } else if (const auto inside = PhotoInside(photo_dir, file)) {
            std::ifstream in(*inside, std::ios::binary);
            if (in) bytes.assign(std::istreambuf_iterator<char>(in), {});
          }
          if (bytes.empty()) {
            pr["status"] = 404;
            pr["error"] = {{"code", "not_found"}, {"message", "照片不存在 / photo not found"}};
            all_ok = false;
          } else {
            auto [status, body] = Enrol(code, bytes, accept_dup, actor);
            pr["status"] = status;
            if (status == 201)
              pr["template"] = body["template"];
            else
              pr["error"] = body["error"], all_ok = false;
          }
          photos.push_back(pr);
        }
        out["photos"] = photos;
        out["result"] = all_ok ? "ok" : "partial";
      } catch (const protocol::ApiError& e) {
        out["result"] = "error";
        out["error"] = {{"code", e.code()}, {"message", e.what()}};
      } catch (const Error& e) {
        out["result"] = "error";
        out["error"] = {{"code", ErrorCodeName(e.code())}, {"message", e.what()}};
      }
      results.push_back(out);
      if (results.size() % 10 == 0) save("running", false);
    }
    save(stopping ? "interrupted" : "done", true);
    auto conn = db->Acquire();
    Audit(conn, actor, "import", "imports/" + std::to_string(import_id), {{"rows", results.size()}});
  } catch (const std::exception& e) {
    spdlog::error("import {} failed: {}", import_id, e.what());
    results.push_back(
        {{"result", "error"}, {"error", {{"code", "internal"}, {"message", e.what()}}}});
    save("failed", true);
  }
}

void Server::Impl::AddEnrolmentRoutes() {
  router
      .Add("POST", "/api/v1/persons/search-by-face", "enrolment", Auth::kAdmin, "photos.read",
           "Search the archive by a face photo (JSON {\"image\": base64} or multipart field "
           "\"image\"; query k = 1..20, default 5): the largest face against every enrolled "
           "feature, best persons first with their scores and whether each reaches the match "
           "threshold (the recognition workers' normal level). 422 bad_image / no_face, 413 "
           "image over 8 MiB. Audited as a view (view.face_search)",
           [this](Request& r) {
             const auto t0 = std::chrono::steady_clock::now();
             const size_t k = size_t(r.QueryInt("k", 5, 1, 20));
             const auto bytes = UploadedImage(r);
             AssessOptions o;
             o.embed_always = true;
             o.liveness = false;  // a photo of a photo is a fine probe for a search
             const GateResult g = AssessUpload(*gate, bytes, o);
             if (g.feature.values.empty())
               throw DetailedApiError(422, "no_face", "未检测到人脸 / no face in the photo",
                                      {{"reasons", ReasonsJson({"no_face"})}});
             // An account limited to sites sees only its sites' persons: rank more
             // candidates and keep the visible ones.
             const SiteScope scope(r.principal);
             std::vector<match::Candidate> ranked;
             if (index) {
               match::SearchOptions so;
               so.k = scope.unscoped() ? k : std::max<size_t>(k * 50, 500);
               ranked = index->Search(g.feature.values, gate->model_version(), so);
             }
             json results = json::array(), codes = json::array();
             {
               auto conn = db->Acquire();
               for (const auto& c : ranked) {
                 if (results.size() >= k) break;
                 if (!scope.PersonCodeVisible(conn, c.person)) continue;
                 Stmt s(conn, "SELECT name, status FROM persons WHERE code = ?");
                 s.Bind(1, c.person);
                 const bool known = s.Step();
                 results.push_back({{"code", c.person},
                                    {"name", known ? json(s.Text(0)) : json()},
                                    {"status", known ? json(s.Text(1)) : json()},
                                    {"score", c.score},
                                    {"match", c.score >= match_threshold}});
                 codes.push_back(c.person);
               }
               // The answer names persons and scores their likeness to a face: a view of
               // their archives by face (R4.2.2.1), counted for the risk warning.
               Audit(conn, AuditEntry{r.principal.name,
                                     r.principal.source,
                                     "view.face_search",
                                     "persons",
                                     "ok",
                                     {{"results", codes}}});
             }
             if (accounts->CountViews(r.principal, 1)) RaiseRiskAlarm(r.principal);
             json q = g.ToJson();
             return Reply::Json({{"faces", g.faces},
                                 {"bbox", q["bbox"]},
                                 {"quality", q["quality"]},
                                 {"threshold", match_threshold},
                                 {"model_version", gate->model_version()},
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
           [this](Request& r) {
             const auto t0 = std::chrono::steady_clock::now();
             const auto bytes = UploadedImage(r);
             const GateResult g = AssessUpload(*gate, bytes, {});
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
           [this](Request& r) {
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
             auto [status, body] = Enrol(r.Path("code"), bytes, accept, r.actor);
             return Reply::Json(body, status);
           })
      .Body(Obj({Req("image", Str("base64 JPEG / PNG")),
                 Opt("accept_duplicate", Bool("enrol even when the face matches another person"))}),
            BodyKind::kJsonOrMultipart);

  router
      .Add("GET", "/api/v1/persons/{code}/photos/{id}", "enrolment", Auth::kAdmin, "photos.read",
           "One enrolment photo (decrypted JPEG; audited)",
           [this](Request& r) {
             ThumbnailSize(r);  // a bad size: 400 before anything is read or audited
             const std::string& code = r.Path("code");
             std::string name;
             {
               auto conn = db->Acquire();
               const int64_t pid = PersonId(conn, code);
               Stmt s(conn, "SELECT file FROM photos WHERE id = ? AND person_id = ?");
               s.Bind(1, std::string_view(r.Path("id"))).Bind(2, pid);
               if (!s.Step()) NotFound("photo " + r.Path("id"));
               name = s.Text(0);
               Audit(conn, r.actor, "photo_view", "persons/" + code, {{"photo", r.Path("id")}});
             }
             const auto plain = ReadPhoto(name);
             return Reply::Jpeg(SizedImage(r, {plain.begin(), plain.end()}));
           })
      .Query({{"size", JType::kInteger, "a thumbnail: the longer side at most this (16-1024 px)"}})
      .Returns("image/jpeg", "the photo");

  router.Add("DELETE", "/api/v1/persons/{code}/photos/{id}", "enrolment", Auth::kAdmin, "enrol",
             "Delete one photo and its feature code (devices get the change)", [this](Request& r) {
               const std::string& code = r.Path("code");
               fs::path file;
               std::vector<int64_t> features;
               {
                 auto conn = db->Acquire();
                 Transaction tx(conn);
                 const int64_t pid = PersonId(conn, code);
                 Stmt s(conn, "SELECT id, file FROM photos WHERE id = ? AND person_id = ?");
                 s.Bind(1, std::string_view(r.Path("id"))).Bind(2, pid);
                 if (!s.Step()) NotFound("photo " + r.Path("id"));
                 const int64_t photo = s.Int(0);
                 file = options.data_dir / "photos" / s.Text(1);
                 Stmt f(conn, "SELECT id FROM features WHERE photo_id = ?");
                 f.Bind(1, photo);
                 while (f.Step()) features.push_back(f.Int(0));
                 Stmt df(conn, "DELETE FROM features WHERE photo_id = ?");
                 df.Bind(1, photo).Run();
                 Stmt dp(conn, "DELETE FROM photos WHERE id = ?");
                 dp.Bind(1, photo).Run();
                 sync->PersonChanged(conn, pid, "photo_deleted");
                 History(conn, pid, "photo_deleted", r.actor, {{"photo", photo}});
                 Audit(conn, r.actor, "photo_delete", "persons/" + code, {{"photo", photo}});
                 tx.Commit();
               }
               std::error_code ec;
               fs::remove(file, ec);
               if (index)
                 for (int64_t f : features) index->RemoveTemplate(match::TemplateId(f));
               return Reply::Json({{"deleted", r.Path("id")}});
             });

  router
      .Add("POST", "/api/v1/persons/{code}/features", "enrolment", Auth::kAdmin, "enrol",
           "Import a feature code made elsewhere with the same model (migration from another "
           "system): base64 of DIM little-endian float32, L2-normalised. Consent and the "
           "duplicate check apply as for a photo",
           [this](Request& r) {
             const auto t0 = std::chrono::steady_clock::now();
             if (gate->model_version().empty() || !index)
               throw protocol::ApiError(503, "unavailable",
                                        "未安装人脸模型 / no face models installed");
             if (r.body["model_version"].get<std::string>() != gate->model_version())
               throw protocol::ApiError(409, "conflict",
                                        "模型版本不一致 / model version differs from the "
                                        "server's " +
                                            gate->model_version());
             crypto::Bytes raw;
             try {
               raw = crypto::FromBase64(r.body["feature"].get<std::string>());
             } catch (const Error&) {
               throw protocol::ApiError(400, "bad_request", "feature 不是 base64 / bad base64");
             }
             const size_t dim = index->options().dim;
             if (raw.size() != dim * sizeof(float))
               throw protocol::ApiError(400, "bad_request",
                                        "feature 须为 " + std::to_string(dim) +
                                            " 个 float32 / feature must hold " +
                                            std::to_string(dim) + " float32 values");
             std::vector<float> f(dim);
             std::memcpy(f.data(), raw.data(), raw.size());
             double norm = 0;
             for (float v : f) norm += double(v) * v;
             if (!(std::abs(norm - 1.0) < 0.01))
               throw protocol::ApiError(400, "bad_request",
                                        "feature 未归一化 / feature is not L2-normalised");
             {
               auto conn = db->Acquire();
               if (auto refused = CheckEnrollable(conn, r.Path("code")))
                 return Reply::Json(refused->second, refused->first);
             }
             auto [status, body] =
                 StoreTemplate(r.Path("code"), f, {}, json::object(),
                               r.body.value("accept_duplicate", false), r.actor, t0);
             return Reply::Json(body, status);
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
           [this](Request& r) {
             const auto rows = ParseCsv(r.body["csv"].get<std::string>());
             if (rows.empty())
               throw protocol::ApiError(400, "bad_request", "CSV 为空 / CSV is empty");
             bool has_name = false;
             for (const auto& h : rows[0]) {
               if (std::find(kImportColumns.begin(), kImportColumns.end(), h) ==
                   kImportColumns.end())
                 throw protocol::ApiError(400, "unknown_field",
                                          "未知 CSV 列 / unknown CSV column: " + h);
               has_name = has_name || h == "name";
             }
             if (!has_name)
               throw protocol::ApiError(400, "bad_request",
                                        "CSV 需要 name 列 / CSV needs a name column");
             if (r.body.contains("photo_dir")) {
               const fs::path dir = InsideFolder(
                   options.import_dir, r.body["photo_dir"].get<std::string>(), "photo_dir");
               if (!fs::is_directory(dir))
                 throw protocol::ApiError(400, "bad_request",
                                          "photo_dir 不是目录 / photo_dir is not a directory");
               r.body["photo_dir"] = dir.string();
             }
             int64_t id = 0;
             {
               auto conn = db->Acquire();
               Stmt s(conn,
                      "INSERT INTO imports(created_ms, actor, state, total) VALUES(?,?,?,?)");
               s.Bind(1, NowMs())
                   .Bind(2, r.actor)
                   .Bind(3, "running")
                   .Bind(4, int64_t(rows.size() - 1));
               s.Run();
               id = conn.LastInsertId();
             }
             std::lock_guard lock(bg_mu);
             workers.emplace_back(
                 [this, id, body = r.body, actor = r.actor, sites = r.principal.sites] {
                   RunImport(id, body, actor, sites);
                 });
             return Reply::Json({{"id", id},
                                 {"state", "running"},
                                 {"total", rows.size() - 1},
                                 {"status_url", "/api/v1/imports/" + std::to_string(id)}},
                                202);
           })
      .Body(Obj({Req("csv", Str("UTF-8 CSV text with a header row")),
                 Opt("photo_dir", Str("folder on the server holding the photo files, inside the "
                                      "import folder (import_dir)")),
                 Opt("photos", Obj({}, "file name → base64 image").Open()),
                 Opt("accept_duplicates", Bool())}));

  router.Add("GET", "/api/v1/imports/{id}", "enrolment", Auth::kAdmin, "archive.read",
             "Progress and per-row results of an import", [this](Request& r) {
               auto conn = db->Acquire();
               Stmt s(conn,
                      "SELECT id, created_ms, actor, state, total, done, results, finished_ms FROM "
                      "imports WHERE id = ?");
               s.Bind(1, std::string_view(r.Path("id")));
               if (!s.Step()) NotFound("import " + r.Path("id"));
               return Reply::Json({{"id", s.Int(0)},
                                   {"created_ms", s.Int(1)},
                                   {"actor", s.Text(2)},
                                   {"state", s.Text(3)},
                                   {"total", s.Int(4)},
                                   {"done", s.Int(5)},
                                   {"results", json::parse(s.Text(6))},
                                   {"finished_ms", J(s.OptInt(7))}});
             });
}

}  // namespace anju::server
