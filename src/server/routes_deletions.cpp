// Bulk deletion with approval (issue 7, R4.2.1.1): one user asks to delete the face data or
// the whole archive of many persons at once, another user approves, and only then does the
// server delete. The request keeps the exact list of persons it was made for, so the
// approver approves that list. Deleting one person at a time stays as it is (move-out,
// consent withdrawal, photo deletion), each audited.
//
//   biometrics  photos (files unlinked) and feature codes; removal queued to every device.
//               The person stays in the archive and may be enrolled again.
//   archives    as move-out, and the personal fields are erased: name, phone, ID number,
//               history, a guardian's name on consents. The identity code stays as a
//               pseudonym, so event counts still add up.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "protocol/api_error.h"
#include "server/audit.h"
#include "server/rbac.h"
#include "server/server_state.h"
#include "server/site_scope.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;
using protocol::ApiError;

namespace {

constexpr size_t kMaxPersons = 10000;  // per request
constexpr size_t kBatch = 200;         // persons per transaction when deleting
constexpr const char* kErasedName = "（已销毁）/ (erased)";

constexpr const char* kColumns =
    "SELECT id, requester, kind, persons, reason, state, created_ms, approver, decided_ms, note, "
    "deleted, photos_deleted FROM deletions";

// FULL: every code; else the count and the first few (the list can be long).
json DeletionJson(Stmt& s, bool full) {
  const json persons = json::parse(s.Text(3));
  json shown = persons;
  if (!full && shown.size() > 20) shown.erase(shown.begin() + 20, shown.end());
  return {{"id", s.Int(0)},
          {"requester", s.Text(1)},
          {"kind", s.Text(2)},
          {"count", persons.size()},
          {"persons", shown},
          {"reason", s.Text(4)},
          {"state", s.Text(5)},
          {"created_ms", s.Int(6)},
          {"approver", s.IsNull(7) ? json() : json(s.Text(7))},
          {"decided_ms", J(s.OptInt(8))},
          {"note", s.Text(9)},
          {"deleted", J(s.OptInt(10))},
          {"photos_deleted", J(s.OptInt(11))}};
}

json Load(Database& db, int64_t id, bool full) {
  Stmt s(db.handle(), std::string(kColumns) + " WHERE id = ?");
  s.Bind(1, id);
  if (!s.Step()) NotFound("deletion " + std::to_string(id));
  return DeletionJson(s, full);
}

}  // namespace

void Server::Impl::RunDeletion(int64_t id, const std::string& actor, const std::string& source) {
  std::string kind;
  std::vector<std::string> codes;
  {
    std::lock_guard lock(db->mutex());
    const json d = Load(*db, id, true);
    kind = d["kind"];
    codes = d["persons"].get<std::vector<std::string>>();
  }
  int64_t deleted = 0, photos = 0;
  const std::string object = "deletions/" + std::to_string(id);
  for (size_t at = 0; at < codes.size(); at += kBatch) {
    std::vector<std::pair<std::string, std::vector<fs::path>>> unlink;
    {
      std::lock_guard lock(db->mutex());
      Transaction tx(*db);
      for (size_t i = at; i < std::min(codes.size(), at + kBatch); ++i) {
        const std::string& code = codes[i];
        Stmt q(db->handle(), "SELECT id FROM persons WHERE code = ?");
        q.Bind(1, code);
        if (!q.Step()) continue;  // gone since the request
        const int64_t pid = q.Int(0);
        auto files = DeleteBiometrics(pid);
        if (kind == "archives") {
          Stmt p(db->handle(),
                 "UPDATE persons SET status = 'moved_out', moved_out_ms = COALESCE(moved_out_ms, "
                 "?1), name = ?2, phone = '', id_number_sealed = NULL, updated_ms = ?1 WHERE id = "
                 "?3");
          p.Bind(1, NowMs()).Bind(2, kErasedName).Bind(3, pid).Run();
          for (const char* table :
               {"credentials", "household_members", "access_group_members", "history"}) {
            Stmt del(db->handle(), std::string("DELETE FROM ") + table + " WHERE person_id = ?");
            del.Bind(1, pid).Run();
          }
          // Consent records stay as the proof they were; a guardian's name is personal data.
          Stmt c(db->handle(), "UPDATE consents SET guardian_name = '' WHERE person_id = ?");
          c.Bind(1, pid).Run();
          sync->PersonChanged(pid, "moved_out");
        } else {
          sync->PersonChanged(pid, "biometrics_deleted");
        }
        History(*db, pid, kind == "archives" ? "archive_erased" : "biometrics_deleted", actor,
                {{"deletion", id}});
        Audit(*db, AuditEntry{actor,
                              source,
                              kind == "archives" ? "person.erase" : "biometrics.delete",
                              "persons/" + code,
                              "ok",
                              {{"deletion", id}, {"photos_deleted", files.size()}}});
        ++deleted;
        photos += int64_t(files.size());
        unlink.emplace_back(code, std::move(files));
      }
      tx.Commit();
    }
    for (const auto& [code, files] : unlink) FinishDelete(code, files);
  }
  std::lock_guard lock(db->mutex());
  Stmt u(db->handle(),
         "UPDATE deletions SET state = 'done', deleted = ?, photos_deleted = ? WHERE id = ?");
  u.Bind(1, deleted).Bind(2, photos).Bind(3, id).Run();
  Audit(*db, AuditEntry{actor,
                        source,
                        "deletion.done",
                        object,
                        "ok",
                        {{"deleted", deleted}, {"photos_deleted", photos}}});
}

void Server::Impl::ResumeDeletions() {
  std::vector<std::pair<int64_t, std::string>> approved;
  {
    std::lock_guard lock(db->mutex());
    Stmt s(db->handle(), "SELECT id, approver FROM deletions WHERE state = 'approved'");
    while (s.Step()) approved.emplace_back(s.Int(0), s.Text(1));
  }
  for (const auto& [id, approver] : approved) {
    spdlog::warn("deletion {} was approved but not finished: finishing it", id);
    RunDeletion(id, approver, "");
  }
}

void Server::Impl::AddDeletionRoutes() {
  router
      .Add("POST", "/api/v1/deletions", "deletions", Auth::kAdmin, "archive.write",
           "Request a bulk deletion of face data or archives (listed persons or a filter); "
           "another user approves it",
           [this](Request& r) {
             const std::string kind = r.body.at("kind").get<std::string>();
             const SiteScope scope(r.principal);
             std::vector<std::string> codes;
             std::lock_guard lock(db->mutex());
             if (r.body.contains("persons")) {
               for (const auto& c : r.body["persons"]) {
                 const std::string code = c.get<std::string>();
                 ScopedPersonId(r.principal, code);  // 404 for unknown or out of scope
                 codes.push_back(code);
               }
             } else if (r.body.contains("filter")) {
               const json& f = r.body["filter"];
               Stmt s(db->handle(),
                      "SELECT code FROM persons WHERE (?1 = '' OR status = ?1) AND (?2 = 0 OR "
                      "(moved_out_ms IS NOT NULL AND moved_out_ms < ?2)) AND name <> ?3 AND " +
                          scope.PersonCondition("id") + " ORDER BY code LIMIT ?4");
               s.Bind(1, f.value("status", "")).Bind(2, f.value("moved_out_before_ms", int64_t(0)));
               s.Bind(3, kErasedName).Bind(4, int64_t(kMaxPersons) + 1);
               while (s.Step()) codes.push_back(s.Text(0));
             } else {
               throw ApiError(400, "bad_request",
                              "须指定 persons 或 filter / give persons or filter");
             }
             std::sort(codes.begin(), codes.end());
             codes.erase(std::unique(codes.begin(), codes.end()), codes.end());
             if (codes.empty())
               throw ApiError(400, "bad_request", "没有符合条件的人员 / no person matches");
             if (codes.size() > kMaxPersons)
               throw ApiError(400, "too_many",
                              "一次最多 10000 人 / at most 10000 persons per request");
             Transaction tx(*db);
             Stmt s(db->handle(),
                    "INSERT INTO deletions(requester, kind, persons, reason, state, created_ms) "
                    "VALUES(?,?,?,?, 'pending', ?)");
             s.Bind(1, r.actor).Bind(2, kind).Bind(3, json(codes).dump());
             s.Bind(4, r.body.at("reason").get<std::string>()).Bind(5, NowMs()).Run();
             const int64_t id = db->LastInsertId();
             Audit(*db, AuditEntry{r.actor,
                                   r.principal.source,
                                   "deletion.request",
                                   "deletions/" + std::to_string(id),
                                   "ok",
                                   {{"kind", kind}, {"count", codes.size()}, {"persons", codes}}});
             tx.Commit();
             return Reply::Json(Load(*db, id, true), 201);
           })
      .Body(
          Obj({Req("kind", Str("biometrics: photos and feature codes; archives: the whole "
                               "archive (personal fields erased)")
                               .Enum({"biometrics", "archives"})),
               Opt("persons", Arr(Str("identity code").MaxLength(64))),
               Opt("filter", Obj({Opt("status", Str().Enum({"", "active", "moved_out"})),
                                  Opt("moved_out_before_ms", Int("moved out before (Unix ms)"))})),
               Req("reason", Str("why the data is destroyed").MaxLength(1000))}));

  router
      .Add("GET", "/api/v1/deletions", "deletions", Auth::kAdmin, kPermSelf,
           "Bulk deletion requests (one's own; every request with export.approve)",
           [this](Request& r) {
             return Reply::Json(ApprovalRequestPage(
                 *db, r, "deletions", kColumns, [](Stmt& s) { return DeletionJson(s, false); }));
           })
      .Query(PagingParams());

  router.Add("GET", "/api/v1/deletions/{id}", "deletions", Auth::kAdmin, kPermSelf,
             "One request with every identity code it names", [this](Request& r) {
               std::lock_guard lock(db->mutex());
               json d = Load(*db, std::stoll(r.Path("id")), true);
               if (d["requester"] != r.actor && !r.principal.Can("export.approve"))
                 NotFound("deletion " + r.Path("id"));
               return Reply::Json(d);
             });

  router
      .Add(
          "POST", "/api/v1/deletions/{id}/reject", "deletions", Auth::kAdmin, "export.approve",
          "Reject a bulk deletion",
          [this](Request& r) {
            const int64_t id = std::stoll(r.Path("id"));
            std::lock_guard lock(db->mutex());
            Transaction tx(*db);
            const json d = Load(*db, id, false);
            if (d["state"] != "pending")
              throw ApiError(409, "conflict",
                             "申请已处理 / already " + d["state"].get<std::string>());
            Stmt u(
                db->handle(),
                "UPDATE deletions SET state = 'rejected', approver = ?, decided_ms = ?, note = ? "
                "WHERE id = ?");
            u.Bind(1, r.actor).Bind(2, NowMs()).Bind(3, r.body.value("note", "")).Bind(4, id).Run();
            Audit(*db, AuditEntry{r.actor,
                                  r.principal.source,
                                  "deletion.reject",
                                  "deletions/" + std::to_string(id),
                                  "ok",
                                  {{"note", r.body.value("note", "")}}});
            tx.Commit();
            return Reply::Json(Load(*db, id, false));
          })
      .Body(Obj({Opt("note", Str().MaxLength(1000))}));

  router
      .Add(
          "POST", "/api/v1/deletions/{id}/approve", "deletions", Auth::kAdmin, "export.approve",
          "Approve a bulk deletion (not one's own); the server deletes at once and reports "
          "how many persons and photos",
          [this](Request& r) {
            const int64_t id = std::stoll(r.Path("id"));
            const std::string note = r.body.value("note", "");
            std::string kind;
            std::vector<std::string> codes;
            {
              std::lock_guard lock(db->mutex());
              Transaction tx(*db);
              const json d = Load(*db, id, true);
              accounts->CheckApprover(d["requester"].get<std::string>(), r.principal);
              if (d["state"] != "pending")
                throw ApiError(409, "conflict",
                               "申请已处理 / already " + d["state"].get<std::string>());
              kind = d["kind"];
              codes = d["persons"].get<std::vector<std::string>>();
              const SiteScope scope(r.principal);
              for (const auto& code : codes)
                if (!scope.PersonCodeVisible(*db, code))
                  throw ApiError(403, "forbidden",
                                 "申请含有您管辖范围外的人员 / the list names a person outside "
                                 "your sites: " +
                                     code);
              // Claimed before deleting: a second approval finds it approved, not pending.
              Stmt u(
                  db->handle(),
                  "UPDATE deletions SET state = 'approved', approver = ?, decided_ms = ?, note = ? "
                  "WHERE id = ? AND state = 'pending'");
              u.Bind(1, r.actor).Bind(2, NowMs()).Bind(3, note).Bind(4, id).Run();
              Audit(*db, AuditEntry{r.actor,
                                    r.principal.source,
                                    "deletion.approve",
                                    "deletions/" + std::to_string(id),
                                    "ok",
                                    {{"kind", kind}, {"count", codes.size()}, {"note", note}}});
              tx.Commit();
            }
            RunDeletion(id, r.actor, r.principal.source);
            std::lock_guard lock(db->mutex());
            return Reply::Json(Load(*db, id, false));
          })
      .Body(Obj({Opt("note", Str().MaxLength(1000))}));
}

}  // namespace anju::server
