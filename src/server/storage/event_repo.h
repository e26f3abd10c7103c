// Events, their snapshot rows, quarantined uploads and video references in events.db
// (R3.2.1.1, R3.3.2.6; docs/events-and-retention.md). Rows in, rows out; the rules live in
// events/event_store.h. Every function runs on the caller's connection and, where it
// matters, in the caller's transaction (storage/event_db.h).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/event_db.h"
#include "server/storage/partitions.h"

namespace anju::server::storage {

// Filters are ANDed; empty / 0 means "any".
struct EventFilter {
  int64_t from_ms = 0, to_ms = 0;  // from_ms <= time_ms < to_ms (0 = no upper bound)
  std::string door, device, person, kind, decision;
  std::optional<std::vector<std::string>> devices;  // none = every device; empty = none
};

struct EventRow {
  std::string id, device_id, kind;
  int64_t created_ms = 0, time_ms = 0, received_ms = 0;
  std::string door, person, decision, alarm_type;
  std::string payload;  // JSON text
  int64_t snapshot_bytes = 0;
  int64_t snapshot_expired_ms = 0;  // read only: set by ExpireSnapshots
  bool has_snapshot = false;        // read only: a snapshot row names the event
  int64_t seq = 0;                  // read only: arrival order
};

// Where a page ends: events strictly older (time, then arrival) come next.
struct EventPosition {
  int64_t time_ms = 0, seq = 0;
};

struct SnapshotRow {
  std::string event_id;
  int64_t time_ms = 0;
  std::string file;  // relative to the data directory
  int64_t bytes = 0;
};

struct QuarantineRow {
  int64_t seq = 0;  // read only
  std::string device_id;
  int64_t received_ms = 0;
  std::string event_id, code, message, raw;
};

struct VideoRefRow {
  int64_t id = 0;  // read only
  std::string device_id, door, event_id;
  int64_t start_ms = 0, end_ms = 0;
  std::string uri;
};

struct EventCounts {
  int64_t events = 0, snapshots = 0, alarms = 0, quarantined = 0, video_refs = 0;
};

class EventRepo {
 public:
  // The statements of one upload, prepared once for the whole batch.
  class Writer {
   public:
    explicit Writer(db::Conn& c);
    bool Exists(const std::string& event_id);
    void Insert(const EventRow& row, const std::string& device_id, int64_t received_ms);
    void InsertSnapshot(const SnapshotRow& row);
    // The same raw event from the same device is kept once.
    void Quarantine(const QuarantineRow& row);

   private:
    db::Stmt exists_, event_, snapshot_, quarantine_;
  };

  // ---- queries: newest first (time, then arrival) ----
  static int64_t Count(db::Conn& c, const EventFilter& f);
  // Up to LIMIT rows after AFTER (OFFSET ignored then), else from OFFSET.
  static std::vector<EventRow> Page(db::Conn& c, const EventFilter& f,
                                    const std::optional<EventPosition>& after, int64_t limit,
                                    int64_t offset);
  // Every matching row, one at a time (memory does not grow with the count).
  static void ForEach(db::Conn& c, const EventFilter& f,
                      const std::function<void(const EventRow&)>& fn);
  static std::optional<EventRow> Get(db::Conn& c, const std::string& event_id);
  // The snapshot file of the event (relative to the data directory).
  static std::optional<std::string> SnapshotFile(db::Conn& c, const std::string& event_id);

  // ---- retention: the caller holds a write transaction ----
  // Oldest first.
  static std::vector<SnapshotRow> SnapshotsBefore(db::Conn& c, int64_t before_ms, int64_t max);
  // Deletes the snapshot rows and marks their events expired at NOW_MS.
  static void ExpireSnapshots(db::Conn& c, const std::vector<SnapshotRow>& rows, int64_t now_ms);
  // Events older than BEFORE_MS that have no snapshot row, oldest first.
  static std::vector<std::string> EventsWithoutSnapshotBefore(db::Conn& c, int64_t before_ms,
                                                              int64_t max);
  static void DeleteEvents(db::Conn& c, const std::vector<std::string>& ids);
  // Select and delete: the ids of the rows deleted.
  static std::vector<int64_t> DeleteVideoRefsBefore(db::Conn& c, int64_t before_ms, int64_t max);
  static std::vector<int64_t> DeleteQuarantineBefore(db::Conn& c, int64_t before_ms, int64_t max);

  // ---- monthly partitions (PostgreSQL, R3.3.2.5; storage/partitions.h) ----
  // The tables partitioned by event month (both get the same months).
  static const std::vector<std::string>& PartitionedTables();
  // Partitions from NOW_MS's month to storage::kMonthsAhead later (own transactions).
  static void EnsurePartitions(db::Conn& c, int64_t now_ms);
  // Months of snapshots / events that ended at or before BEFORE_MS, oldest first (none on
  // SQLite).
  static std::vector<Month> SnapshotMonthsBefore(db::Conn& c, int64_t before_ms);
  static std::vector<Month> EventMonthsBefore(db::Conn& c, int64_t before_ms);
  // In the caller's transaction: marks the events of MONTH's snapshots expired at NOW_MS
  // and drops the month of snapshots; returns the rows it held (their blobs are the
  // caller's to remove after the commit).
  static std::vector<SnapshotRow> DropSnapshotMonth(db::Conn& c, const Month& month,
                                                    int64_t now_ms);
  // In the caller's transaction: drops MONTH of events when none of them has a snapshot
  // row left (else nullopt: the row-by-row path keeps the rule); returns their ids. The
  // caller deletes their closed alarms first (AlarmRepo::DeleteClosedOfEventsIn).
  static std::optional<std::vector<std::string>> DropEventMonth(db::Conn& c, const Month& month);

  // ---- quarantine, video references, counts ----
  // Oldest first.
  static std::vector<QuarantineRow> Quarantined(
      db::Conn& c, const std::optional<std::vector<std::string>>& devices, int64_t limit,
      int64_t offset);
  static int64_t QuarantineCount(db::Conn& c,
                                 const std::optional<std::vector<std::string>>& devices);
  static int64_t InsertVideoRef(db::Conn& c, const VideoRefRow& row, int64_t created_ms);
  // Start time in [FROM_MS, TO_MS) (TO_MS 0 = no upper bound), oldest first.
  static std::vector<VideoRefRow> VideoRefs(db::Conn& c, int64_t from_ms, int64_t to_ms);
  static EventCounts Counts(db::Conn& c);
};

}  // namespace anju::server::storage
