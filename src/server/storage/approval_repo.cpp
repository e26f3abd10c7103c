#include "server/storage/approval_repo.h"

#include <nlohmann/json.hpp>

#include "server/storage/repo_sql.h"

namespace anju::server::storage {

using db::Stmt;
using nlohmann::json;

namespace {

constexpr const char* kExportCols =
    "id, requester, kind, filter, reason, state, created_ms, approver, decided_ms, note, "
    "downloaded_ms, rows";

ExportRow ReadExport(const Stmt& s) {
  return {s.Int(0), s.Text(1),    s.Text(2),   s.Text(3), s.Text(4),    s.Text(5),
          s.Int(6), s.OptText(7), s.OptInt(8), s.Text(9), s.OptInt(10), s.OptInt(11)};
}

constexpr const char* kDeletionCols =
    "id, requester, kind, persons, reason, state, created_ms, approver, decided_ms, note, "
    "deleted, photos_deleted";

DeletionRow ReadDeletion(const Stmt& s) {
  DeletionRow d;
  d.id = s.Int(0);
  d.requester = s.Text(1);
  d.kind = s.Text(2);
  d.persons = json::parse(s.Text(3)).get<std::vector<std::string>>();
  d.reason = s.Text(4);
  d.state = s.Text(5);
  d.created_ms = s.Int(6);
  d.approver = s.OptText(7);
  d.decided_ms = s.OptInt(8);
  d.note = s.Text(9);
  d.deleted = s.OptInt(10);
  d.photos_deleted = s.OptInt(11);
  return d;
}

// A page of TABLE, newest first: every row (ALL) or REQUESTER's.
template <typename Row>
std::pair<std::vector<Row>, int64_t> Page(db::Conn& c, const std::string& table, const char* cols,
                                          Row (*read)(const Stmt&), bool all,
                                          const std::string& requester, int64_t limit,
                                          int64_t offset) {
  // ?1 is a flag (0/1): PostgreSQL takes no integer for a condition.
  Stmt n(c, "SELECT COUNT(*) FROM " + table + " WHERE ?1 = 1 OR requester = ?2");
  n.Bind(1, all).Bind(2, requester).Step();
  Stmt s(c, std::string("SELECT ") + cols + " FROM " + table +
                " WHERE ?1 = 1 OR requester = ?2 ORDER BY id DESC LIMIT ?3 OFFSET ?4");
  s.Bind(1, all).Bind(2, requester).Bind(3, limit).Bind(4, offset);
  std::vector<Row> rows;
  while (s.Step()) rows.push_back(read(s));
  return {std::move(rows), n.Int(0)};
}

// "?, ?, ?" for N values.
std::string Placeholders(size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) out += i ? ", ?" : "?";
  return out;
}

}  // namespace

int64_t ApprovalRepo::InsertExport(db::Conn& c, const std::string& requester,
                                   const std::string& kind, const std::string& filter_json,
                                   const std::string& reason, int64_t now_ms) {
  Stmt s(c,
         "INSERT INTO exports(requester, kind, filter, reason, state, created_ms) "
         "VALUES(?,?,?,?, 'pending', ?) RETURNING id");
  s.Bind(1, requester).Bind(2, kind).Bind(3, filter_json).Bind(4, reason).Bind(5, now_ms);
  return InsertReturningId(s);
}

std::optional<ExportRow> ApprovalRepo::Export(db::Conn& c, int64_t id) {
  Stmt s(c, std::string("SELECT ") + kExportCols + " FROM exports WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return ReadExport(s);
}

std::pair<std::vector<ExportRow>, int64_t> ApprovalRepo::Exports(db::Conn& c, bool all,
                                                                 const std::string& requester,
                                                                 int64_t limit, int64_t offset) {
  return Page<ExportRow>(c, "exports", kExportCols, ReadExport, all, requester, limit, offset);
}

void ApprovalRepo::DecideExport(db::Conn& c, int64_t id, const std::string& state,
                                const std::string& approver, int64_t now_ms,
                                const std::string& note) {
  Stmt u(c, "UPDATE exports SET state = ?, approver = ?, decided_ms = ?, note = ? WHERE id = ?");
  u.Bind(1, state).Bind(2, approver).Bind(3, now_ms).Bind(4, note).Bind(5, id).Run();
}

bool ApprovalRepo::MarkDownloaded(db::Conn& c, int64_t id, int64_t now_ms, int64_t rows) {
  Stmt u(c,
         "UPDATE exports SET state = 'downloaded', downloaded_ms = ?, rows = ? "
         "WHERE id = ? AND state = 'approved'");
  u.Bind(1, now_ms).Bind(2, rows).Bind(3, id).Run();
  return c.Changes() > 0;
}

int64_t ApprovalRepo::InsertDeletion(db::Conn& c, const std::string& requester,
                                     const std::string& kind,
                                     const std::vector<std::string>& persons,
                                     const std::string& reason, int64_t now_ms) {
  Stmt s(c,
         "INSERT INTO deletions(requester, kind, persons, reason, state, created_ms) "
         "VALUES(?,?,?,?, 'pending', ?) RETURNING id");
  s.Bind(1, requester).Bind(2, kind).Bind(3, json(persons).dump()).Bind(4, reason);
  s.Bind(5, now_ms);
  return InsertReturningId(s);
}

std::optional<DeletionRow> ApprovalRepo::Deletion(db::Conn& c, int64_t id) {
  Stmt s(c, std::string("SELECT ") + kDeletionCols + " FROM deletions WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) return std::nullopt;
  return ReadDeletion(s);
}

std::pair<std::vector<DeletionRow>, int64_t> ApprovalRepo::Deletions(db::Conn& c, bool all,
                                                                     const std::string& requester,
                                                                     int64_t limit,
                                                                     int64_t offset) {
  return Page<DeletionRow>(c, "deletions", kDeletionCols, ReadDeletion, all, requester, limit,
                           offset);
}

bool ApprovalRepo::ClaimDeletion(db::Conn& c, int64_t id, const std::string& approver,
                                 int64_t now_ms, const std::string& note) {
  Stmt u(c,
         "UPDATE deletions SET state = 'approved', approver = ?, decided_ms = ?, note = ? "
         "WHERE id = ? AND state = 'pending'");
  u.Bind(1, approver).Bind(2, now_ms).Bind(3, note).Bind(4, id).Run();
  return c.Changes() > 0;
}

void ApprovalRepo::RejectDeletion(db::Conn& c, int64_t id, const std::string& approver,
                                  int64_t now_ms, const std::string& note) {
  Stmt u(c,
         "UPDATE deletions SET state = 'rejected', approver = ?, decided_ms = ?, note = ? "
         "WHERE id = ?");
  u.Bind(1, approver).Bind(2, now_ms).Bind(3, note).Bind(4, id).Run();
}

void ApprovalRepo::FinishDeletion(db::Conn& c, int64_t id, int64_t deleted, int64_t photos) {
  Stmt u(c, "UPDATE deletions SET state = 'done', deleted = ?, photos_deleted = ? WHERE id = ?");
  u.Bind(1, deleted).Bind(2, photos).Bind(3, id).Run();
}

std::vector<std::pair<int64_t, std::string>> ApprovalRepo::UnfinishedDeletions(db::Conn& c) {
  Stmt s(c, "SELECT id, approver FROM deletions WHERE state = 'approved'");
  std::vector<std::pair<int64_t, std::string>> out;
  while (s.Step()) out.emplace_back(s.Int(0), s.Text(1));
  return out;
}

std::vector<std::string> ApprovalRepo::DeletionCandidates(db::Conn& c, const SiteScope& scope,
                                                          const std::string& status,
                                                          int64_t moved_out_before_ms,
                                                          const std::string& erased_name,
                                                          int64_t limit) {
  Stmt s(c,
         "SELECT code FROM persons WHERE (?1 = '' OR status = ?1) AND (?2 = 0 OR "
         "(moved_out_ms IS NOT NULL AND moved_out_ms < ?2)) AND name <> ?3 AND " +
             scope.PersonCondition("id") + " ORDER BY code LIMIT ?4");
  s.Bind(1, status).Bind(2, moved_out_before_ms).Bind(3, erased_name).Bind(4, limit);
  std::vector<std::string> out;
  while (s.Step()) out.push_back(s.Text(0));
  return out;
}

std::vector<ExportPerson> ApprovalRepo::ExportPersons(db::Conn& c, const SiteScope& scope,
                                                      const std::string& status) {
  Stmt s(c,
         "SELECT code, name, phone, status, moved_in_ms, moved_out_ms FROM persons WHERE (?1 = "
         "'' OR status = ?1) AND " +
             scope.PersonCondition("id") + " ORDER BY code");
  s.Bind(1, status);
  std::vector<ExportPerson> out;
  while (s.Step())
    out.push_back({s.Text(0), s.Text(1), s.Text(2), s.Text(3), s.OptInt(4), s.OptInt(5)});
  return out;
}

std::vector<ExportPhoto> ApprovalRepo::ExportPhotos(
    db::Conn& c, const SiteScope& scope, const std::string& status,
    const std::optional<std::vector<std::string>>& codes, int64_t limit) {
  std::string sql =
      "SELECT p.code, p.name, ph.file, ph.id, ph.created_ms FROM photos ph JOIN persons p ON "
      "p.id = ph.person_id WHERE (? = '' OR p.status = ?) AND " +
      scope.PersonCondition("p.id");
  if (codes)
    sql += " AND p.code IN (" + (codes->empty() ? "NULL" : Placeholders(codes->size())) + ")";
  sql += " ORDER BY p.code, ph.id LIMIT ?";
  Stmt s(c, sql);
  int i = 1;
  s.Bind(1, status).Bind(2, status);
  i = 3;
  if (codes)
    for (const auto& code : *codes) s.Bind(i++, code);
  s.Bind(i, limit);
  std::vector<ExportPhoto> out;
  while (s.Step()) out.push_back({s.Text(0), s.Text(1), s.Text(2), s.Int(3), s.Int(4)});
  return out;
}

void ErasePersonalData(db::Conn& c, int64_t person_id, const std::string& erased_name,
                       int64_t now_ms) {
  Stmt p(c,
         "UPDATE persons SET status = 'moved_out', moved_out_ms = COALESCE(moved_out_ms, ?1), "
         "name = ?2, phone = '', id_number_sealed = NULL, updated_ms = ?1 WHERE id = ?3");
  p.Bind(1, now_ms).Bind(2, erased_name).Bind(3, person_id).Run();
  for (const char* table :
       {"credentials", "household_members", "access_group_members", "history"}) {
    Stmt del(c, std::string("DELETE FROM ") + table + " WHERE person_id = ?");
    del.Bind(1, person_id).Run();
  }
  // Consent records stay as the proof they were; a guardian's name is personal data.
  Stmt g(c, "UPDATE consents SET guardian_name = '' WHERE person_id = ?");
  g.Bind(1, person_id).Run();
}

}  // namespace anju::server::storage
