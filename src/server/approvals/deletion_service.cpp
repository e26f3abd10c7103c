#include "server/approvals/deletion_service.h"
#include "core/error.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/clock.h"
#include "server/audit/audit_log.h"
#include "server/storage/site_scope.h"

namespace anju::server {

namespace fs = std::filesystem;
using nlohmann::json;
using storage::ApprovalRepo;

namespace {

constexpr size_t kMaxPersons = 10000;  // per request
constexpr size_t kBatch = 200;         // persons per transaction when deleting

json Opt(const std::optional<int64_t>& v) {
  return v ? json(*v) : json();
}

// FULL: every code; else the count and the first few (the list can be long).
json DeletionJson(const storage::DeletionRow& d, bool full) {
  json shown = d.persons;
  if (!full && shown.size() > 20) shown.erase(shown.begin() + 20, shown.end());
  return {{"id", d.id},
          {"requester", d.requester},
          {"kind", d.kind},
          {"count", d.persons.size()},
          {"persons", shown},
          {"reason", d.reason},
          {"state", d.state},
          {"created_ms", d.created_ms},
          {"approver", d.approver ? json(*d.approver) : json()},
          {"decided_ms", Opt(d.decided_ms)},
          {"note", d.note},
          {"deleted", Opt(d.deleted)},
          {"photos_deleted", Opt(d.photos_deleted)}};
}

storage::DeletionRow Load(db::Conn& conn, int64_t id) {
  auto d = ApprovalRepo::Deletion(conn, id);
  if (!d) throw Error(ErrorCode::kNotFound, "不存在 / not found: deletion " + std::to_string(id));
  return *d;
}

}  // namespace

json DeletionService::Request(const Principal& who, const std::string& kind,
                              const std::optional<std::vector<std::string>>& persons,
                              const std::optional<json>& filter, const std::string& reason) {
  const SiteScope scope(who);
  std::vector<std::string> codes;
  auto conn = archive_.Acquire();
  if (persons) {
    for (const auto& code : *persons) {
      const auto pid = person_.person_id(conn, code);
      // Unknown or outside the caller's sites: the same 404.
      if (!pid || !scope.PersonVisible(conn, *pid))
        throw Error(ErrorCode::kNotFound, "不存在 / not found: person " + code);
      codes.push_back(code);
    }
  } else if (filter) {
    codes = ApprovalRepo::DeletionCandidates(conn, scope, filter->value("status", ""),
                                             filter->value("moved_out_before_ms", int64_t(0)),
                                             kErasedName, int64_t(kMaxPersons) + 1);
  } else {
    throw Error(ErrorCode::kInvalidArgument, "须指定 persons 或 filter / give persons or filter");
  }
  std::sort(codes.begin(), codes.end());
  codes.erase(std::unique(codes.begin(), codes.end()), codes.end());
  if (codes.empty())
    throw Error(ErrorCode::kInvalidArgument, "没有符合条件的人员 / no person matches");
  if (codes.size() > kMaxPersons)
    throw Error(ErrorCode::kInvalidArgument,
                "一次最多 10000 人 / at most 10000 persons per request", "too_many");
  db::Transaction tx(conn);
  const int64_t id = ApprovalRepo::InsertDeletion(conn, who.name, kind, codes, reason, NowMs());
  Audit(conn, AuditEntry{who.name,
                         who.source,
                         "deletion.request",
                         "deletions/" + std::to_string(id),
                         "ok",
                         {{"kind", kind}, {"count", codes.size()}, {"persons", codes}}});
  tx.Commit();
  return DeletionJson(Load(conn, id), true);
}

json DeletionService::List(const Principal& who, int64_t limit, int64_t offset) {
  auto conn = archive_.Acquire();
  const auto [rows, total] =
      ApprovalRepo::Deletions(conn, who.Can("export.approve"), who.name, limit, offset);
  json items = json::array();
  for (const auto& r : rows) items.push_back(DeletionJson(r, false));
  return {{"items", items}, {"total", total}};
}

json DeletionService::Get(int64_t id, const Principal& who) {
  auto conn = archive_.Acquire();
  const auto d = Load(conn, id);
  if (d.requester != who.name && !who.Can("export.approve"))
    throw Error(ErrorCode::kNotFound, "不存在 / not found: deletion " + std::to_string(id));
  return DeletionJson(d, true);
}

json DeletionService::Reject(int64_t id, const std::string& note, const Principal& who) {
  auto conn = archive_.Acquire();
  db::Transaction tx(conn);
  const auto d = Load(conn, id);
  if (d.state != "pending") throw Error(ErrorCode::kConflict, "申请已处理 / already " + d.state);
  ApprovalRepo::RejectDeletion(conn, id, who.name, NowMs(), note);
  Audit(conn, AuditEntry{who.name,
                         who.source,
                         "deletion.reject",
                         "deletions/" + std::to_string(id),
                         "ok",
                         {{"note", note}}});
  tx.Commit();
  return DeletionJson(Load(conn, id), false);
}

json DeletionService::Approve(int64_t id, const std::string& note, const Principal& who) {
  {
    auto conn = archive_.Acquire();
    db::Transaction tx(conn);
    const auto d = Load(conn, id);
    accounts_.CheckApprover(conn, d.requester, who);
    if (d.state != "pending") throw Error(ErrorCode::kConflict, "申请已处理 / already " + d.state);
    const SiteScope scope(who);
    for (const auto& code : d.persons)
      if (!scope.PersonCodeVisible(conn, code))
        throw Error(
            ErrorCode::kPermissionDenied,
            "申请含有您管辖范围外的人员 / the list names a person outside your sites: " + code);
    // Claimed before deleting: a second approval finds it approved, not pending.
    ApprovalRepo::ClaimDeletion(conn, id, who.name, NowMs(), note);
    Audit(conn, AuditEntry{who.name,
                           who.source,
                           "deletion.approve",
                           "deletions/" + std::to_string(id),
                           "ok",
                           {{"kind", d.kind}, {"count", d.persons.size()}, {"note", note}}});
    tx.Commit();
  }
  Run(id, who.name, who.source);
  auto conn = archive_.Acquire();
  return DeletionJson(Load(conn, id), false);
}

void DeletionService::Run(int64_t id, const std::string& actor, const std::string& source) {
  storage::DeletionRow d;
  {
    auto conn = archive_.Acquire();
    d = Load(conn, id);
  }
  const bool archives = d.kind == "archives";
  int64_t deleted = 0, photos = 0;
  for (size_t at = 0; at < d.persons.size(); at += kBatch) {
    std::vector<std::pair<std::string, std::vector<std::string>>> unlink;
    {
      auto conn = archive_.Acquire();
      db::Transaction tx(conn);
      for (size_t i = at; i < std::min(d.persons.size(), at + kBatch); ++i) {
        const std::string& code = d.persons[i];
        const auto pid = person_.person_id(conn, code);
        if (!pid) continue;  // gone since the request
        auto files = person_.delete_biometrics(conn, *pid);
        if (archives) person_.erase_archive(conn, *pid);
        person_.person_changed(conn, *pid, archives ? "moved_out" : "biometrics_deleted");
        History(conn, *pid, archives ? "archive_erased" : "biometrics_deleted", actor,
                {{"deletion", id}});
        Audit(conn, AuditEntry{actor,
                               source,
                               archives ? "person.erase" : "biometrics.delete",
                               "persons/" + code,
                               "ok",
                               {{"deletion", id}, {"photos_deleted", files.size()}}});
        ++deleted;
        photos += int64_t(files.size());
        unlink.emplace_back(code, std::move(files));
      }
      tx.Commit();
    }
    for (const auto& [code, files] : unlink) person_.finish(code, files);
  }
  auto conn = archive_.Acquire();
  db::Transaction tx(conn);
  ApprovalRepo::FinishDeletion(conn, id, deleted, photos);
  Audit(conn, AuditEntry{actor,
                         source,
                         "deletion.done",
                         "deletions/" + std::to_string(id),
                         "ok",
                         {{"deleted", deleted}, {"photos_deleted", photos}}});
  tx.Commit();
}

void DeletionService::ResumeUnfinished() {
  std::vector<std::pair<int64_t, std::string>> approved;
  {
    auto conn = archive_.Acquire();
    approved = ApprovalRepo::UnfinishedDeletions(conn);
  }
  for (const auto& [id, approver] : approved) {
    spdlog::warn("deletion {} was approved but not finished: finishing it", id);
    Run(id, approver, "");
  }
}

}  // namespace anju::server
