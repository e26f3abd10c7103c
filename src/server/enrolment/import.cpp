// The batch import of EnrolmentService (enrolment_service.h): a CSV of people (header row)
// with photos from a folder inside the import folder and/or inline, run in the background;
// each row creates or finds its person, joins a household, records consent, and enrols
// its photos one by one through the gate and the duplicate check.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/clock.h"
#include "core/paths.h"
#include "crypto/bytes.h"
#include "protocol/api_error.h"
#include "server/access/account_support.h"
#include "server/audit/audit_log.h"
#include "server/audit/sealing.h"
#include "server/enrolment/enrolment_service.h"
#include "server/storage/person_repo.h"
#include "server/storage/photo_repo.h"
#include "server/storage/site_scope.h"
#include "store/gallery.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;
using storage::PersonRepo;

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
  if (quoted)
    throw Error(ErrorCode::kInvalidArgument, "CSV 引号未闭合 / unterminated quote", "bad_request");
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

Error BadRequest(const std::string& message) {
  return Error(ErrorCode::kInvalidArgument, message, "bad_request");
}

}  // namespace

std::pair<int64_t, int64_t> EnrolmentService::StartImport(json request, const std::string& actor,
                                                          const Scope& scope) {
  const auto rows = ParseCsv(request["csv"].get<std::string>());
  if (rows.empty()) throw BadRequest("CSV 为空 / CSV is empty");
  bool has_name = false;
  for (const auto& h : rows[0]) {
    if (std::find(kImportColumns.begin(), kImportColumns.end(), h) == kImportColumns.end())
      throw Error(ErrorCode::kInvalidArgument, "未知 CSV 列 / unknown CSV column: " + h,
                  "unknown_field");
    has_name = has_name || h == "name";
  }
  if (!has_name) throw BadRequest("CSV 需要 name 列 / CSV needs a name column");
  if (request.contains("photo_dir")) {
    const fs::path dir =
        FolderInside(d_.import_dir, request["photo_dir"].get<std::string>(), "photo_dir");
    if (!fs::is_directory(dir))
      throw BadRequest("photo_dir 不是目录 / photo_dir is not a directory");
    request["photo_dir"] = dir.string();
  }
  const int64_t total = int64_t(rows.size() - 1);
  int64_t id = 0;
  {
    auto conn = d_.db->Acquire();
    id = storage::ImportRepo::Insert(conn, NowMs(), actor, total);
  }
  d_.spawn([this, id, request = std::move(request), actor, scope] {
    RunImport(id, request, actor, scope);
  });
  return {id, total};
}

json EnrolmentService::Import(const std::string& id) {
  auto conn = d_.db->Acquire();
  auto row = storage::ImportRepo::Get(conn, id);
  if (!row) NotFound("import " + id);
  return *row;
}

void EnrolmentService::RunImport(int64_t import_id, const json& req, const std::string& actor,
                                 const Scope& scope_of) {
  const SiteScope scope(scope_of);
  auto stopping = [&] { return d_.stopping && d_.stopping->load(); };
  json results = json::array();
  auto save = [&](const char* state, bool finished) {
    auto conn = d_.db->Acquire();
    storage::ImportRepo::Save(conn, import_id, state, int64_t(results.size()), results.dump(),
                              finished ? std::optional<int64_t>(NowMs()) : std::nullopt);
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
    for (size_t n = 1; n < rows.size() && !stopping(); ++n) {
      const auto& row = rows[n];
      json out = {{"row", n + 1}};
      try {
        std::string code = col(row, "code");
        const std::string name = col(row, "name");
        if (name.empty()) throw BadRequest("name 为空 / name is empty");
        if (code.empty()) code = "P" + crypto::ToHex(crypto::RandomBytes(5));
        if (!store::IsValidIdentityCode(code)) throw BadRequest("编号无效 / invalid code " + code);
        out["code"] = code;
        {
          auto conn = d_.db->Acquire();
          db::Transaction tx(conn);
          const auto existing = PersonRepo::IdByCode(conn, code);
          // A scoped account imports only into households of its sites (and touches only
          // persons it sees): other rows fail, as a missing household or person would.
          if (!scope.unscoped()) {
            const std::string hh = col(row, "household_id");
            if (hh.empty())
              throw BadRequest(
                  "须指定本小区的住户 / household_id required (account limited to sites)");
            if (hh.size() > 18 || hh.find_first_not_of("0123456789") != std::string::npos ||
                !scope.HouseholdVisible(conn, std::stoll(hh)))
              NotFound("household " + hh);
            if (existing && !scope.PersonVisible(conn, *existing)) NotFound("person " + code);
          }
          int64_t pid = 0;
          if (existing) {
            pid = *existing;
            out["person"] = "existing";
          } else {
            const int64_t now = NowMs();
            storage::NewPersonRow p;
            p.code = code;
            p.name = name;
            if (const std::string idn = col(row, "id_number"); !idn.empty())
              p.id_number_sealed = SealIdNumber(d_.data_key, code, idn);
            const std::string minor = col(row, "minor");
            p.phone = col(row, "phone");
            p.minor = minor == "1" || minor == "true" || minor == "yes";
            p.moved_in_ms = now;
            p.now_ms = now;
            pid = PersonRepo::Insert(conn, p);
            anju::server::History(conn, pid, "moved_in", actor, {{"import", import_id}});
            out["person"] = "created";
          }
          if (const std::string hh = col(row, "household_id"); !hh.empty()) {
            const std::string role = col(row, "role").empty() ? "tenant" : col(row, "role");
            try {
              PersonRepo::AddToHousehold(conn, int64_t(std::stoll(hh)), pid, role, NowMs(), true);
            } catch (const std::exception&) {
              throw BadRequest("住户或角色无效 / bad household_id or role");
            }
          }
          if (const std::string nv = col(row, "consent_notice_version"); !nv.empty()) {
            storage::ConsentRow c;
            c.notice_version = nv;
            c.purpose = col(row, "consent_purpose");
            c.granted_ms = NowMs();
            c.operator_name = actor;
            c.evidence_file = col(row, "consent_evidence");
            c.guardian_name = col(row, "guardian_name");
            c.guardian_relation = col(row, "guardian_relation");
            PersonRepo::InsertConsent(conn, pid, c);
            anju::server::History(conn, pid, "consent_granted", actor, {{"import", import_id}});
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
          // A refused photo records its outcome as the error's code name ("refused");
          // the HTTP edge turns it into a status (http/enrolment_status.h).
          if (bytes.empty()) {
            pr["refused"] = ErrorCodeName(ErrorCode::kNotFound);
            pr["error"] = {{"code", "not_found"}, {"message", "照片不存在 / photo not found"}};
            all_ok = false;
          } else {
            const EnrolResult r = Enrol(code, bytes, accept_dup, actor);
            if (!r.refused) {
              pr["template"] = r.enrolled["template"];
            } else {
              pr["refused"] = ErrorCodeName(r.refused->code());
              json error = {{"code", protocol::FromError(*r.refused).code()},
                            {"message", r.refused->what()}};
              for (const auto& [k, v] : r.details.items()) error[k] = v;
              pr["error"] = error;
              all_ok = false;
            }
          }
          photos.push_back(pr);
        }
        out["photos"] = photos;
        out["result"] = all_ok ? "ok" : "partial";
      } catch (const Error& e) {
        // A refusal named for the HTTP edge keeps that name (bad_request); others are named
        // by their error code.
        out["result"] = "error";
        out["error"] = {{"code", e.reason().empty() ? ErrorCodeName(e.code()) : e.reason()},
                        {"message", e.what()}};
      }
      results.push_back(out);
      if (results.size() % 10 == 0) save("running", false);
    }
    save(stopping() ? "interrupted" : "done", true);
    auto conn = d_.db->Acquire();
    Audit(conn, actor, "import", "imports/" + std::to_string(import_id),
          {{"rows", results.size()}});
  } catch (const std::exception& e) {
    spdlog::error("import {} failed: {}", import_id, e.what());
    results.push_back(
        {{"result", "error"}, {"error", {{"code", "internal"}, {"message", e.what()}}}});
    save("failed", true);
  }
}

}  // namespace anju::server
