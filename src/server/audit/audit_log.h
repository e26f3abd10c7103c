// The audit log (R4.2.2.1) and the per-person history (move-in, move-out, changes).
//
// Every audit record holds time, actor, source (client address), action, object, result and
// a JSON detail, and is tamper-evident (docs/audit-and-keys.md):
//
//   hash(n) = SM3(hash(n-1) || Canonical(record n))      hash(0) = 32 zero bytes
//   Canonical = "anju-audit/v1" || u64 id || u64 time_ms || for actor, source, action,
//               object, result, detail: u32 length || bytes          (integers big-endian)
//
// The chain alone can be recomputed by anyone who edits archive.db, so the server also
// writes HMAC-SM3 checkpoints (table audit_checkpoints) with a key derived from the audit
// class key (audit.key, wrapped by the master key): every `checkpoint_every` records, when
// `checkpoint_interval_ms` has passed since the last one, and at shutdown. And after every
// commit that added audit records it rewrites DATA_DIR/audit.head, an HMAC over the latest
// record, so deleting the tail after the last checkpoint is detected too.
//
// What an attacker who can write archive.db (but has not got the master key) can do: nothing
// undetected to records covered by the head file. Deleting audit.head is detected when a
// checkpoint exists; replacing it by an old copy and truncating back to it is NOT detected
// (only a copy of the log kept elsewhere can catch that). See the docs for the full list.
//
// On PostgreSQL several servers append to one log; each keeps its own head file, naming its
// own last record. A server's head then proves that its records are all there; records
// after it are the other servers' (the checkpoints, HMACed in the log, still cover them),
// so a truncation after the newest checkpoint is caught only by the server that wrote the
// last truncated record, at its next start or verification.
//
// Audit records are never deleted by retention (keep at least 6 months: forever by default).
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "core/clock.h"
#include "crypto/envelope.h"
#include "db/db.h"
#include "server/storage/audit_repo.h"

namespace anju::server {

// One record as a caller writes it.
struct AuditEntry {
  std::string actor;          // user name, "device:<id>", "system", "retention", …
  std::string source;         // client address ("203.0.113.7:51234"); "" for internal jobs
  std::string action;         // "login", "photo_view", "enrol", "export_approve", …
  std::string object;         // "persons/P001", "users/alice", …
  std::string result = "ok";  // "ok", "denied", "failed", "locked", …
  nlohmann::json detail = nlohmann::json::object();
};

// Appends one record (and a checkpoint when one is due) on the caller's connection, inside
// its transaction when there is one, so the record commits with the change it describes.
// Returns the record id.
int64_t Audit(db::Conn& conn, const AuditEntry& entry);
void Audit(db::Conn& conn, const std::string& actor, const std::string& action,
           const std::string& object, const nlohmann::json& detail = nlohmann::json::object());
void History(db::Conn& conn, int64_t person_id, const std::string& action, const std::string& actor,
             const nlohmann::json& detail = nlohmann::json::object());

struct AuditPolicy {
  int64_t checkpoint_every = 100;                // records between checkpoints (0 = never)
  int64_t checkpoint_interval_ms = 10 * 60'000;  // time between checkpoints (0 = never)
  std::filesystem::path head_file;               // empty = <dir of archive.db>/audit.head
};

// Gives the database its audit key (call once after opening it, before serving): chains
// records written before the chain existed, records a notice ("audit_head_ahead" /
// "audit_head_missing") when audit.head does not match the log (a crash between writing the
// head and committing, a restored backup, or tampering) and writes a checkpoint. Without it
// Audit() still chains records but writes no checkpoint and no head file. The head file is
// written just before each commit that added records (db::Conn::BeforeCommit).
void AttachAuditKey(db::Db& db, const crypto::DataKey& audit_key, AuditPolicy policy = {});
// Writes a "shutdown" checkpoint and forgets the key (call before closing the database).
void DetachAuditKey(db::Db& db);
// A checkpoint now if records were added since the last one.
void AuditCheckpoint(db::Conn& conn, const std::string& reason);

struct AuditVerifyResult {
  bool ok = false;
  int64_t checked = 0;               // records whose chain hash was recomputed
  int64_t checkpoints = 0;           // checkpoints whose HMAC was verified
  int64_t last_id = 0;               // id of the last record
  bool keyed = false;                // checkpoints and head were checked with the key
  std::optional<int64_t> first_bad;  // the first record that is wrong or missing
  std::string problem;               // what is wrong ("中文 / English"), empty when ok
  nlohmann::json ToJson() const;     // {"ok","checked","checkpoints","last_id","first_bad"?,…}
};

// Verifies the whole chain, every checkpoint and the head file. Without a key only the chain
// is checked (which proves nothing against someone who recomputes it: keyed stays false).
// Never throws for tampered content; throws Error for an unreadable database.
// On the caller's connection. HEAD_FILE empty = next to the database.
AuditVerifyResult VerifyAudit(db::Conn& conn, const std::optional<crypto::DataKey>& audit_key,
                              const std::filesystem::path& head_file = {});
// Opens ARCHIVE_DB read-only (safe while the server runs).
AuditVerifyResult VerifyAuditFile(const std::filesystem::path& archive_db,
                                  const std::optional<crypto::DataKey>& audit_key,
                                  const std::filesystem::path& head_file = {});

nlohmann::json ToJson(const AuditRecord& r);

std::vector<AuditRecord> ReadAudit(db::Conn& conn, const AuditQuery& q);
// The newest record with ACTION as {"time_ms", "actor", "detail"}, or null.
nlohmann::json LatestAudit(db::Conn& conn, const std::string& action);
// Writes the records matching Q (limit ignored: all of them) as CSV (UTF-8 with BOM, header
// row, times ISO 8601 UTC) or JSON lines ("json": one object per line). Returns the count.
// Throws Error(kInvalidArgument) for another format.
size_t ExportAudit(db::Conn& conn, const AuditQuery& q, const std::string& format,
                   std::ostream& out);
size_t ExportAuditFile(const std::filesystem::path& archive_db, const AuditQuery& q,
                       const std::string& format, std::ostream& out);

}  // namespace anju::server
