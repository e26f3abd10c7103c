// Retention (R3.3.2.6): a job the server runs on a schedule
// that deletes what has been kept long enough — for real: snapshot files are unlinked,
// rows deleted, and the database hands its free pages back to the file system.
//
// Periods are calendar months back from NOW (UTC), compared with the event time
// (snapshots, events), the clip start (video references) or the arrival time
// (quarantine). 0 months = keep forever.
//
//   snapshots         12 months (R3.3.2.6)     files + rows; the event row stays, marked
//   video references   3 months (R3.3.2.6)     rows (the clips live on the NVR)
//   events            24 months (our choice)   access / alarm / door records without
//                                              pictures: long enough for a year-on-year
//                                              look at comings and goings (R3.4.2.2) and
//                                              over the 6 months of log keeping R4.2.3.1
//                                              asks; not forever (personal data). Open
//                                              alarms are never deleted.
//   quarantine        12 months                 rejected uploads kept for diagnosis
//
// Snapshots older than the event period go with their events even if the snapshot period
// is longer. On PostgreSQL, where snapshots and events are partitioned by month
// (R3.3.2.5, storage/partitions.h), the months that ended before a cutoff are dropped
// whole first (audited and counted as their rows), then the rest goes row by row. Each step deletes
// in batches of short transactions, so ingestion goes on; running it twice deletes nothing the
// second time. Every deletion is reported to the audit callback with what was deleted (ids and
// sizes), batch by batch, then a summary.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "server/events/event_store.h"

namespace anju::server {

struct RetentionPolicy {
  int snapshot_months = 12;
  int video_months = 3;
  int event_months = 24;
  int quarantine_months = 12;
  size_t batch = 500;  // rows per transaction
};

struct RetentionReport {
  int64_t now_ms = 0;
  // Things older than these (Unix ms) were deleted; 0 = that kind is kept forever.
  int64_t snapshot_cutoff_ms = 0, video_cutoff_ms = 0, event_cutoff_ms = 0,
          quarantine_cutoff_ms = 0;
  int64_t snapshots_deleted = 0;
  int64_t snapshot_bytes_freed = 0;  // sealed files unlinked
  int64_t orphan_files_deleted = 0;  // snapshot files no row named (crash leftovers)
  int64_t orphan_bytes_freed = 0;
  int64_t events_deleted = 0;
  int64_t video_refs_deleted = 0;
  int64_t quarantine_deleted = 0;
  // PostgreSQL: months of snapshots and events dropped whole (their rows are counted
  // above as deleted; storage/partitions.h).
  int64_t partitions_dropped = 0;
  int64_t db_bytes_before = 0, db_bytes_after = 0;  // events.db + WAL
  int64_t bytes_freed() const;
};
nlohmann::json ToJson(const RetentionReport& report);

// The audit log sink: ACTION is "retention.snapshots_deleted", "retention.events_deleted",
// "retention.video_refs_deleted", "retention.quarantine_deleted",
// "retention.orphan_files_deleted" (one call per batch, DETAIL lists what) and finally
// "retention.completed" with ToJson(report). May be empty.
using AuditFn = std::function<void(std::string action, nlohmann::json detail)>;

RetentionReport RunRetention(EventStore& store, const RetentionPolicy& policy,
                             std::chrono::system_clock::time_point now, const AuditFn& audit);

// NOW_MS minus MONTHS calendar months (UTC; the day is clamped to the month's length,
// e.g. 31 May - 3 months = 28/29 Feb). Throws Error(kInvalidArgument) for months < 0.
int64_t MonthsBefore(int64_t now_ms, int months);

}  // namespace anju::server
