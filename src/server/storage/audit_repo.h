// The audit log's tables in archive.db (audit, audit_checkpoints, history; schema versions 1
// and 3 in storage/archive_schema.cpp). The chain, the keys and the head file are
// audit/audit_log.h's; this file only reads and writes rows.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server {

struct AuditRecord {
  int64_t id = 0;
  int64_t time_ms = 0;
  std::string actor, source, action, object, result;
  std::string detail;  // JSON text as stored
  std::string hash;    // hex chain hash ("" before the record was chained)
};

struct AuditQuery {
  std::optional<int64_t> from_ms, to_ms;  // time_ms in [from, to)
  std::string actor, action;              // exact match when set
  std::string object_prefix;              // object starts with this
  int64_t after_id = 0;                   // paging: records with id > after_id
  int64_t before_id = 0;                  // paging newest first: id < before_id (0 = none)
  int64_t limit = 100;                    // 0 = all
  bool newest_first = false;
};

namespace storage {

struct CheckpointRow {
  int64_t id = 0, audit_id = 0, time_ms = 0;
  std::string hash, reason, key_id, mac;
};

class AuditRepo {
 public:
  static void Insert(db::Conn& c, const AuditRecord& r);
  // The last record's id and hash ("" when not chained yet); nullopt for an empty log.
  static std::optional<std::pair<int64_t, std::string>> Last(db::Conn& c);
  // Every record in id order, until FN returns false.
  static void ForEach(db::Conn& c, const std::function<bool(const AuditRecord&)>& fn);
  // Fills in the chain hash of a record written before the chain existed.
  static void SetHash(db::Conn& c, int64_t id, const std::string& hash);
  static std::optional<std::string> HashOf(db::Conn& c, int64_t id);
  static std::optional<int64_t> TimeOf(db::Conn& c, int64_t id);
  static std::vector<AuditRecord> Query(db::Conn& c, const AuditQuery& q, bool ignore_limit);
  static std::optional<AuditRecord> LatestWithAction(db::Conn& c, const std::string& action);
  // Newest first, exact matches on the non-empty filters; returns the page and the total.
  static std::pair<std::vector<AuditRecord>, int64_t> Page(db::Conn& c, const std::string& action,
                                                           const std::string& object,
                                                           const std::string& actor, int64_t limit,
                                                           int64_t offset);

  static std::optional<CheckpointRow> LastCheckpoint(db::Conn& c);
  static int64_t NextCheckpointId(db::Conn& c);
  static void InsertCheckpoint(db::Conn& c, const CheckpointRow& cp);
  static std::vector<CheckpointRow> Checkpoints(db::Conn& c);  // id order

  static void InsertHistory(db::Conn& c, int64_t person_id, const std::string& action,
                            const std::string& detail, const std::string& actor, int64_t time_ms);
};

}  // namespace storage
}  // namespace anju::server
