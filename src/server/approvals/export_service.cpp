#include "server/approvals/export_service.h"
#include "core/error.h"

#include <algorithm>
#include <sstream>

#include "core/clock.h"
#include "crypto/bytes.h"
#include "crypto/password.h"
#include "server/approvals/export_archive.h"
#include "server/audit/audit_log.h"
#include "server/storage/site_scope.h"

namespace anju::server {

using nlohmann::json;
using storage::ApprovalRepo;

namespace {

// RFC 4180 field.
std::string Csv(const std::string& v) {
  if (v.find_first_of(",\"\n\r") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

json Opt(const std::optional<int64_t>& v) {
  return v ? json(*v) : json();
}

[[noreturn]] void NotFoundExport(int64_t id) {
  throw Error(ErrorCode::kNotFound, "不存在 / not found: export " + std::to_string(id));
}

}  // namespace

json ExportService::ToJson(const storage::ExportRow& r) {
  return {{"id", r.id},
          {"requester", r.requester},
          {"kind", r.kind},
          {"filter", json::parse(r.filter)},
          {"reason", r.reason},
          {"state", r.state},
          {"created_ms", r.created_ms},
          {"approver", r.approver ? json(*r.approver) : json()},
          {"decided_ms", Opt(r.decided_ms)},
          {"note", r.note},
          {"downloaded_ms", Opt(r.downloaded_ms)},
          {"rows", Opt(r.rows)}};
}

json ExportService::Request(const Principal& who, const std::string& kind, const json& filter,
                            const std::string& reason) {
  if (filter.contains("persons") &&
      (!filter["persons"].is_array() ||
       !std::all_of(filter["persons"].begin(), filter["persons"].end(),
                    [](const json& c) { return c.is_string(); })))
    throw Error(ErrorCode::kInvalidArgument,
                "filter.persons 须为编码数组 / filter.persons: identity codes");
  auto conn = d_.archive->Acquire();
  db::Transaction tx(conn);
  const int64_t id =
      ApprovalRepo::InsertExport(conn, who.name, kind, filter.dump(), reason, NowMs());
  Audit(conn, who.name, "export.request", "export " + std::to_string(id),
        {{"kind", kind}, {"filter", filter}, {"source", who.source}});
  tx.Commit();
  return ToJson(*ApprovalRepo::Export(conn, id));
}

json ExportService::List(const Principal& who, int64_t limit, int64_t offset) {
  auto conn = d_.archive->Acquire();
  const auto [rows, total] =
      ApprovalRepo::Exports(conn, who.Can("export.approve"), who.name, limit, offset);
  json items = json::array();
  for (const auto& r : rows) items.push_back(ToJson(r));
  return {{"items", items}, {"total", total}};
}

json ExportService::Decide(int64_t id, bool approve, const std::string& note,
                           const Principal& who) {
  auto conn = d_.archive->Acquire();
  const auto e = ApprovalRepo::Export(conn, id);
  if (!e) NotFoundExport(id);
  d_.accounts->CheckApprover(conn, e->requester, who);
  if (e->state != "pending") throw Error(ErrorCode::kConflict, "申请已处理 / already " + e->state);
  db::Transaction tx(conn);
  ApprovalRepo::DecideExport(conn, id, approve ? "approved" : "rejected", who.name, NowMs(), note);
  Audit(conn, who.name, std::string("export.") + (approve ? "approve" : "reject"),
        "export " + std::to_string(id), {{"note", note}, {"source", who.source}});
  tx.Commit();
  return ToJson(*ApprovalRepo::Export(conn, id));
}

ExportService::File ExportService::Download(int64_t id, const std::string& passphrase,
                                            const Principal& who) {
  storage::ExportRow e;
  {
    auto conn = d_.archive->Acquire();
    const auto found = ApprovalRepo::Export(conn, id);
    if (!found) NotFoundExport(id);
    e = *found;
  }
  if (e.requester != who.name)
    throw Error(ErrorCode::kPermissionDenied, "只有申请人可以下载 / only the requester");
  if (e.state == "pending")
    throw Error(ErrorCode::kPermissionDenied, "尚未审批 / not approved yet", "approval_required");
  if (e.state != "approved") throw Error(ErrorCode::kConflict, "不可下载 / export is " + e.state);
  if (passphrase.size() < 8)
    throw Error(ErrorCode::kInvalidArgument, "口令至少 8 位 / passphrase: ≥ 8 characters",
                "weak_password");
  const std::string approver = e.approver.value_or("");
  int64_t rows = 0;
  const int64_t now = NowMs();
  const std::string watermark = "安居导出 #" + std::to_string(id) + " 申请人 " + who.name +
                                " 审批人 " + approver + " / anju export #" + std::to_string(id) +
                                " for " + who.name + " approved by " + approver +
                                " time_ms=" + std::to_string(now);
  const std::string data = Render(e.kind, json::parse(e.filter), who, watermark, &rows);
  const json header = {{"export", id},          {"kind", e.kind}, {"requester", who.name},
                       {"approver", approver},  {"time_ms", now}, {"rows", rows},
                       {"watermark", watermark}};
  // The watermark travels inside the plaintext too, so a copy of the opened CSV still names
  // who took it out (a photo export has it in every image).
  const std::string marked = e.kind == "photos" ? data : data + "# " + watermark + "\n";
  const auto sealed =
      crypto::SealWithPassphrase(passphrase, crypto::AsBytes(marked), header.dump());
  {
    auto conn = d_.archive->Acquire();
    db::Transaction tx(conn);
    if (!ApprovalRepo::MarkDownloaded(conn, id, now, rows))
      throw Error(ErrorCode::kConflict, "已下载 / already downloaded");
    Audit(conn, who.name, "export.download", "export " + std::to_string(id),
          {{"rows", rows}, {"kind", e.kind}, {"source", who.source}});
    tx.Commit();
  }
  if (d_.accounts->CountViews(who, rows) && d_.risk_alarm) d_.risk_alarm(who);
  return {std::string(sealed.begin(), sealed.end()), "anju-export-" + std::to_string(id) + ".anjx"};
}

std::string ExportService::Render(const std::string& kind, const json& filter, const Principal& who,
                                  const std::string& watermark, int64_t* rows) {
  const SiteScope scope(who);  // the requester's sites bound what the file holds
  *rows = 0;
  if (kind == "persons") {
    std::ostringstream out;
    out << "\xEF\xBB\xBF";  // UTF-8 BOM for spreadsheet programs
    out << "编码 / code,姓名 / name,电话 / phone,状态 / status,入住 / moved_in_ms,迁出 / "
           "moved_out_ms\n";
    auto conn = d_.archive->Acquire();
    for (const auto& p : ApprovalRepo::ExportPersons(conn, scope, filter.value("status", ""))) {
      out << Csv(p.code) << ',' << Csv(p.name) << ',' << Csv(p.phone) << ',' << Csv(p.status) << ','
          << (p.moved_in_ms ? std::to_string(*p.moved_in_ms) : "") << ','
          << (p.moved_out_ms ? std::to_string(*p.moved_out_ms) : "") << '\n';
      ++*rows;
    }
    return out.str();
  }
  if (kind == "photos") return RenderPhotos(filter, who, watermark, rows);
  if (kind == "events") {
    std::ostringstream csv;
    *rows = d_.events_csv(filter, d_.scoped_devices(who), csv);
    return csv.str();
  }
  throw Error(ErrorCode::kInvalidArgument, "不支持的导出类型 / unsupported export kind: " + kind);
}

// A tar of the enrolment photos of the persons FILTER selects (status, persons), each
// watermarked with the export, and a manifest. Bounded, because the file is built in memory.
std::string ExportService::RenderPhotos(const json& filter, const Principal& who,
                                        const std::string& watermark, int64_t* rows) {
  constexpr int64_t kMaxPhotos = 2000;
  const SiteScope scope(who);
  std::optional<std::vector<std::string>> codes;
  if (filter.contains("persons")) codes = filter["persons"].get<std::vector<std::string>>();
  std::vector<storage::ExportPhoto> photos;
  {
    auto conn = d_.archive->Acquire();
    photos =
        ApprovalRepo::ExportPhotos(conn, scope, filter.value("status", ""), codes, kMaxPhotos + 1);
  }
  if (int64_t(photos.size()) > kMaxPhotos)
    throw Error(ErrorCode::kTooLarge,
                "照片超过 2000 张，请缩小范围 / more than 2000 photos: narrow the filter");
  // The images get the English part: the drawing font has no Chinese.
  const size_t english = watermark.find("anju export");
  const std::string image_mark =
      english == std::string::npos ? watermark : watermark.substr(english);
  std::vector<std::pair<std::string, std::string>> files;
  std::ostringstream manifest;
  manifest << "\xEF\xBB\xBF编码 / code,姓名 / name,照片 / photo,文件 / file,采集 / created_ms\n";
  for (const auto& p : photos) {
    const auto plain = d_.read_photo(p.file);
    const std::string path = "photos/" + p.code + "/" + std::to_string(p.id) + ".jpg";
    files.emplace_back(path, WatermarkJpeg(std::string(plain.begin(), plain.end()), image_mark));
    manifest << Csv(p.code) << ',' << Csv(p.name) << ',' << p.id << ',' << path << ','
             << p.created_ms << '\n';
  }
  *rows = int64_t(photos.size());
  files.emplace_back("manifest.csv", manifest.str());
  files.emplace_back("WATERMARK.txt", watermark + "\n");
  return TarArchive(files, NowMs() / 1000);
}

}  // namespace anju::server
