// Requests that one person makes and another approves (R4.2.1.1): bulk exports and bulk
// deletions (archive.db tables exports and deletions, schema versions 2 and 5), and the
// reads an export renders.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"
#include "server/storage/site_scope.h"

namespace anju::server::storage {

struct ExportRow {
  int64_t id = 0;
  std::string requester, kind;
  std::string filter;  // JSON text
  std::string reason, state;
  int64_t created_ms = 0;
  std::optional<std::string> approver;
  std::optional<int64_t> decided_ms;
  std::string note;
  std::optional<int64_t> downloaded_ms, rows;
};

struct DeletionRow {
  int64_t id = 0;
  std::string requester, kind;
  std::vector<std::string> persons;
  std::string reason, state;
  int64_t created_ms = 0;
  std::optional<std::string> approver;
  std::optional<int64_t> decided_ms;
  std::string note;
  std::optional<int64_t> deleted, photos_deleted;
};

// One line of a persons export.
struct ExportPerson {
  std::string code, name, phone, status;
  std::optional<int64_t> moved_in_ms, moved_out_ms;
};

// One photo of a photo export.
struct ExportPhoto {
  std::string code, name, file;
  int64_t id = 0, created_ms = 0;
};

class ApprovalRepo {
 public:
  // ---- exports ----
  static int64_t InsertExport(db::Conn& c, const std::string& requester, const std::string& kind,
                              const std::string& filter_json, const std::string& reason,
                              int64_t now_ms);
  static std::optional<ExportRow> Export(db::Conn& c, int64_t id);
  // Newest first: every request (ALL) or REQUESTER's. Returns the page and the total.
  static std::pair<std::vector<ExportRow>, int64_t> Exports(db::Conn& c, bool all,
                                                            const std::string& requester,
                                                            int64_t limit, int64_t offset);
  static void DecideExport(db::Conn& c, int64_t id, const std::string& state,
                           const std::string& approver, int64_t now_ms, const std::string& note);
  // From approved to downloaded; false when it was not approved any more (a second download).
  static bool MarkDownloaded(db::Conn& c, int64_t id, int64_t now_ms, int64_t rows);

  // ---- deletions ----
  static int64_t InsertDeletion(db::Conn& c, const std::string& requester, const std::string& kind,
                                const std::vector<std::string>& persons, const std::string& reason,
                                int64_t now_ms);
  static std::optional<DeletionRow> Deletion(db::Conn& c, int64_t id);
  static std::pair<std::vector<DeletionRow>, int64_t> Deletions(db::Conn& c, bool all,
                                                                const std::string& requester,
                                                                int64_t limit, int64_t offset);
  // pending → approved (claimed before deleting); false when it was not pending.
  static bool ClaimDeletion(db::Conn& c, int64_t id, const std::string& approver, int64_t now_ms,
                            const std::string& note);
  static void RejectDeletion(db::Conn& c, int64_t id, const std::string& approver, int64_t now_ms,
                             const std::string& note);
  static void FinishDeletion(db::Conn& c, int64_t id, int64_t deleted, int64_t photos);
  // Approved but not finished (a stop in the middle): (id, approver).
  static std::vector<std::pair<int64_t, std::string>> UnfinishedDeletions(db::Conn& c);
  // Identity codes of persons matching a deletion filter within SCOPE, at most LIMIT;
  // persons already erased (their name is ERASED_NAME) are left out.
  static std::vector<std::string> DeletionCandidates(db::Conn& c, const SiteScope& scope,
                                                     const std::string& status,
                                                     int64_t moved_out_before_ms,
                                                     const std::string& erased_name, int64_t limit);

  // ---- what exports render ----
  static std::vector<ExportPerson> ExportPersons(db::Conn& c, const SiteScope& scope,
                                                 const std::string& status);
  // Photos of the persons STATUS (and CODES when given) select, at most LIMIT.
  static std::vector<ExportPhoto> ExportPhotos(db::Conn& c, const SiteScope& scope,
                                               const std::string& status,
                                               const std::optional<std::vector<std::string>>& codes,
                                               int64_t limit);
};

// Kind "archives" of a bulk deletion, in the caller's transaction: the person is moved out
// and the personal fields are erased (name ERASED_NAME, phone, ID number, credentials,
// memberships, history, a guardian's name on consents); the identity code stays.
void ErasePersonalData(db::Conn& c, int64_t person_id, const std::string& erased_name,
                       int64_t now_ms);

}  // namespace anju::server::storage
