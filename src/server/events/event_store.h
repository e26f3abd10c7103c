// The server's event store (R3.2.1.1, R3.4.2.2): access records,
// alarms and door events uploaded by terminals (docs/device-protocol.md, "Uploading
// records"), their snapshots, alarm handling and the video references kept for them.
//
// Storage: its own SQLite file <data>/events.db (WAL, synchronous=FULL, incremental
// auto-vacuum so retention gives space back). Snapshots are blobs of the server's
// runtime::BlobStore (the data directory unless ServerOptions::blobs_dir says otherwise),
// never database BLOBs: key snapshots/YYYY/MM/DD/<event id>.jpg.sealed (UTC date of the
// event time; the same path under the data directory as before the blob store), each
// crypto::Seal(data key, jpeg, aad = event id) so a file copied next to another id does
// not open. Every snapshot of a batch goes in one BlobStore::PutMany, durable before the
// batch's single transaction commits, so a committed row never points at a missing or
// torn file; a crash in between leaves at most an orphan blob, which retention sweeps.
//
// Idempotency: the event id (the terminal outbox's UUID) is the key. An id already stored
// is answered as a duplicate and nothing changes (first copy wins), also within one batch
// and across restarts. An invalid event is kept verbatim in a quarantine table and
// reported as rejected, so a terminal can acknowledge it and nothing is lost.
//
// Errors are anju::Error: a malformed batch (not {"events":[...]}, more than
// kMaxEventsPerBatch events) kInvalidArgument (reason "unknown_field" for an unknown
// top-level field) or kTooLarge; an invalid alarm transition kConflict; bad query arguments
// kInvalidArgument; unknown ids kNotFound; a damaged database (or a file that is not an
// event store) kCorrupt; a full disk kStorageFull (507, storage_health.h); the disk kIo.
//
// Thread-safe: writes are serialised on the database's writer connection; queries and
// snapshot reads share its read-only reader, each CSV export opens a read-only database of
// its own; readers never wait for an ingest (WAL). The schema is in storage/event_db.h
// (db::Migrations), the SQL in storage/event_repo.h and storage/alarm_repo.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "crypto/envelope.h"

namespace anju::db {
class Db;
class Conn;
}  // namespace anju::db
namespace anju::server::storage {
struct EventRow;
}
namespace anju::server::runtime {
class BlobStore;
}

namespace anju::server {

// ---- ingestion -------------------------------------------------------------------------

inline constexpr size_t kMaxEventsPerBatch = 500;             // docs/device-protocol.md
inline constexpr size_t kMaxPayloadBytes = 64 * 1024;         // serialized payload JSON
inline constexpr size_t kMaxSnapshotBytes = 4 * 1024 * 1024;  // decoded JPEG

struct RejectedEvent {
  std::string id;       // the event's id as sent ("" when it had no string id)
  std::string code;     // bad_request | unknown_field | too_large
  std::string message;  // "中文 / English"
};

// The answer to one upload; ToJson gives the protocol's response body.
struct IngestResult {
  std::vector<std::string> stored;
  std::vector<std::string> duplicates;
  std::vector<RejectedEvent> rejected;
  size_t alarms_created = 0;
};
nlohmann::json ToJson(const IngestResult& result);

// How snapshot files reach the disk is the blob store's (runtime::BlobSync for files).
struct EventStoreOptions {
  // Accepted event times: not before this (2020-01-01) and at most this far in the
  // future of the server clock; anything else is quarantined (a terminal's clock is wrong).
  int64_t min_time_ms = 1577836800000;
  int64_t max_future_ms = 24 * 3600 * 1000;
};

// ---- queries ---------------------------------------------------------------------------

// Filters are ANDed; empty / 0 means "any". Pages are newest first (time, then arrival).
struct EventQuery {
  int64_t from_ms = 0;  // time_ms >= from_ms
  int64_t to_ms = 0;    // time_ms < to_ms (0 = no upper bound)
  std::string door;     // "0", "east-gate" (numbers compare as their decimal text)
  std::string device;
  std::string person;
  std::string kind;      // access | alarm | door_event
  std::string decision;  // access decision: open | deny | stranger | spoof | uncertain
  size_t limit = 50;     // 1..1000
  size_t offset = 0;     // ignored when cursor is set
  std::string cursor;    // next_cursor of the previous page (stable while new events arrive)
  // Only events of these devices (an account's sites, server/site_scope.h); none = all.
  std::optional<std::vector<std::string>> devices;
};

struct EventRecord {
  std::string id;
  std::string device_id;
  std::string kind;
  int64_t created_ms = 0;   // outbox append time on the terminal
  int64_t time_ms = 0;      // payload time_ms, else created_ms
  int64_t received_ms = 0;  // server clock at ingestion
  std::string door;         // "" when the payload names none
  std::string person;       // identity code, "" when none
  std::string decision;     // access events
  std::string alarm_type;   // alarm events (and stranger / spoof access events)
  nlohmann::json payload;
  bool has_snapshot = false;        // bytes available through Snapshot(id)
  int64_t snapshot_bytes = 0;       // JPEG size
  int64_t snapshot_expired_ms = 0;  // when retention deleted it (0 = never had / still there)
};
nlohmann::json ToJson(const EventRecord& event);

struct EventPage {
  int64_t total = 0;  // rows matching the filters (all pages)
  std::vector<EventRecord> items;
  std::string next_cursor;  // "" on the last page
};
nlohmann::json ToJson(const EventPage& page);

// ---- alarms ----------------------------------------------------------------------------

// new → acknowledged → closed; nothing else.
enum class AlarmState { kNew, kAcknowledged, kClosed };
const char* AlarmStateName(AlarmState state);
// Throws Error(kInvalidArgument) for anything but "new", "acknowledged", "closed".
AlarmState ParseAlarmState(std::string_view name);

struct Alarm {
  int64_t id = 0;
  std::string event_id;
  std::string device_id;
  std::string type;      // alarm_type (stranger, spoof, forced_open, tamper, ...)
  std::string severity;  // critical | major | minor
  std::string door;
  std::string person;
  int64_t time_ms = 0;
  std::string description;  // payload description ("中文 / English") when sent
  AlarmState state = AlarmState::kNew;
  std::string acknowledged_by;
  int64_t acknowledged_ms = 0;
  std::string acknowledge_note;
  std::string closed_by;
  int64_t closed_ms = 0;
  std::string close_note;
};
nlohmann::json ToJson(const Alarm& alarm);

struct AlarmQuery {
  int64_t from_ms = 0;
  int64_t to_ms = 0;
  std::optional<AlarmState> state;
  std::string type;
  std::string door;
  std::string device;
  size_t limit = 50;  // 1..1000
  size_t offset = 0;
  std::optional<std::vector<std::string>> devices;  // as EventQuery::devices
};

struct AlarmPage {
  int64_t total = 0;
  std::vector<Alarm> items;
};
nlohmann::json ToJson(const AlarmPage& page);

// ---- video references (kept 3 months by retention, R3.3.2.6) ---------------------------

struct VideoRef {
  int64_t id = 0;  // assigned by AddVideoRef
  std::string device_id;
  std::string door;
  std::string event_id;  // optional: the event the clip belongs to
  int64_t start_ms = 0;
  int64_t end_ms = 0;
  std::string uri;  // where the recording lives (NVR / RTSP playback URL / file)
};

// ---- maintenance primitives (used by retention.h) --------------------------------------

struct DeletedSnapshot {
  std::string event_id;
  std::string key;    // the blob's key (its path relative to the data directory)
  int64_t bytes = 0;  // size of the sealed file
  int64_t time_ms = 0;
};

class EventStore {
 public:
  // Opens (creating if absent) DATA_DIR/events.db; snapshots go to BLOBS (the server's
  // blob store, which outlives this). The data key seals snapshots; opening an existing
  // store with another key works, but its snapshots then fail to open (Error(kCrypto)).
  EventStore(const std::filesystem::path& data_dir, const crypto::DataKey& key,
             runtime::BlobStore& blobs, EventStoreOptions options = {});
  // The same with a blob store of its own: files under DATA_DIR (snapshots/...).
  EventStore(const std::filesystem::path& data_dir, const crypto::DataKey& key,
             EventStoreOptions options = {});
  // On DB, opened by the caller with storage::EventsSchema() (the distributed mode's
  // PostgreSQL: storage::OpenEventsPostgres); DATA_DIR holds nothing of it then.
  EventStore(std::unique_ptr<db::Db> db, const std::filesystem::path& data_dir,
             const crypto::DataKey& key, runtime::BlobStore& blobs, EventStoreOptions options = {});
  ~EventStore();
  EventStore(const EventStore&) = delete;
  EventStore& operator=(const EventStore&) = delete;

  // One upload from DEVICE_ID: {"events":[{id, kind, created_ms, payload, snapshot?}]}.
  // All stored events, quarantined events and alarms of the batch commit in one
  // transaction; when Ingest returns, all of it is durable.
  IngestResult Ingest(const std::string& device_id, const nlohmann::json& body);
  // Runs on Ingest's transaction for each event it stores (the platform's uplink,
  // server/platform/uplink_sender.h): the event and what depends on it commit together.
  // Set once, before the first Ingest.
  void SetOnStored(std::function<void(db::Conn&, const storage::EventRow&)> fn) {
    on_stored_ = std::move(fn);
  }

  EventPage Query(const EventQuery& query) const;
  // One event; Error(kNotFound) when unknown.
  EventRecord Get(const std::string& event_id) const;
  // Decrypted JPEG bytes. Error(kNotFound) when the event has no snapshot (never had or
  // deleted by retention), Error(kCrypto) when the file fails authentication.
  std::vector<uint8_t> Snapshot(const std::string& event_id) const;
  // Every event matching the filters (limit / offset / cursor ignored), newest first, as
  // CSV: UTF-8 with a BOM and CRLF line ends so Excel shows Chinese text; times in UTC+8
  // (Beijing) by default. Streams: memory does not grow with the row count. Returns rows.
  size_t ExportCsv(const EventQuery& query, std::ostream& out, int utc_offset_minutes = 480) const;

  AlarmPage Alarms(const AlarmQuery& query) const;
  Alarm GetAlarm(int64_t alarm_id) const;
  // new → acknowledged → closed, recording who, when and the note. Throws
  // Error(kNotFound) for an unknown alarm, Error(kInvalidArgument) for an empty actor,
  // Error(kConflict) for any other transition.
  Alarm SetAlarmState(int64_t alarm_id, AlarmState to, const std::string& actor,
                      const std::string& note = "");

  int64_t AddVideoRef(const VideoRef& ref);
  std::vector<VideoRef> VideoRefs(int64_t from_ms = 0, int64_t to_ms = 0) const;

  // Quarantined events, oldest first: {"seq", "device_id", "received_ms", "event_id",
  // "code", "message", "raw"} (raw = the event exactly as parsed, JSON text).
  // DEVICES: only events of these devices (an account's site scope); nullopt = all.
  std::vector<nlohmann::json> Quarantine(
      size_t limit = 100, size_t offset = 0,
      const std::optional<std::vector<std::string>>& devices = std::nullopt) const;
  int64_t QuarantineCount(const std::optional<std::vector<std::string>>& devices) const;

  struct Counts {
    int64_t events = 0, snapshots = 0, alarms = 0, quarantined = 0, video_refs = 0;
  };
  Counts Count() const;

  // --- for retention: each call is one short transaction, so ingestion continues ---
  // Deletes up to MAX snapshot rows with event time < BEFORE_MS, marks their events, and
  // unlinks the files after the commit. Returns what it deleted.
  std::vector<DeletedSnapshot> ExpireSnapshots(int64_t before_ms, size_t max);
  // Deletes up to MAX events with time < BEFORE_MS that no longer have a snapshot (expire
  // those first); closed alarms of those events go too, open alarms stay (an alarm keeps
  // its own copy of what it needs). Returns the deleted ids.
  std::vector<std::string> DeleteEventsBefore(int64_t before_ms, size_t max);
  // PostgreSQL's monthly partitions (R3.3.2.5, storage/partitions.h; nothing on SQLite):
  // makes the months from NOW_MS's to two later ready,
  void PreparePartitions(int64_t now_ms);
  // drops the oldest month of snapshots that ended at or before BEFORE_MS, as
  // ExpireSnapshots would have deleted its rows (events marked, blobs removed after the
  // commit); nullopt when there is none left,
  std::optional<std::vector<DeletedSnapshot>> DropSnapshotMonth(int64_t before_ms);
  // drops the oldest month of events that ended at or before BEFORE_MS and has no snapshot
  // row left, with the closed alarms of its events; nullopt when there is none. What is
  // left before BEFORE_MS (the month holding it, the default partition) goes row by row.
  std::optional<std::vector<std::string>> DropEventMonth(int64_t before_ms);
  std::vector<int64_t> DeleteVideoRefsBefore(int64_t before_ms, size_t max);
  std::vector<int64_t> DeleteQuarantineBefore(int64_t before_ms, size_t max);
  // Orphan sweep: calls FN for every snapshot blob key under PREFIX ("snapshots/2025/03/"),
  // FN returns false to stop.
  void ListSnapshotKeys(const std::string& prefix,
                        const std::function<bool(const std::string& key)>& fn) const;
  // Removes blob KEY (a *.jpg.sealed under snapshots/) unless a snapshot row names it;
  // returns the bytes freed, nullopt when kept. Race-free with Ingest.
  std::optional<int64_t> RemoveOrphanSnapshot(const std::string& key);
  // Drops the snapshot directories the removals left empty (blob stores with directories).
  void PruneSnapshotDirs();
  // Gives freed pages back to the file system (incremental vacuum + WAL truncate).
  void ReclaimSpace();
  // Size of events.db plus its WAL.
  int64_t DatabaseBytes() const;

  const std::filesystem::path& data_dir() const { return data_dir_; }
  // events.db's path (meaningful on SQLite only: on PostgreSQL no file exists there).
  std::filesystem::path database_file() const { return data_dir_ / "events.db"; }
  // The database itself, for readers beside the store (storage/viid_events_reader.h).
  db::Db& database() const { return *db_; }
  // The blob key of an event's sealed snapshot (UTC date of TIME_MS).
  static std::string SnapshotKey(const std::string& event_id, int64_t time_ms);
  // Where the snapshots are on disk when the store keeps its own blobs in the data
  // directory (the constructor without a blob store); tests and `anju bench` look there.
  std::filesystem::path snapshot_dir() const { return data_dir_ / "snapshots"; }
  std::filesystem::path SnapshotPath(const std::string& event_id, int64_t time_ms) const;

 private:
  void Open();

  std::filesystem::path data_dir_;
  std::function<void(db::Conn&, const storage::EventRow&)> on_stored_;
  crypto::DataKey key_;
  EventStoreOptions options_;
  std::unique_ptr<runtime::BlobStore> own_blobs_;  // when none was given
  runtime::BlobStore* blobs_ = nullptr;
  // Writes, retention and the orphan sweep; Ingest holds it while it writes snapshot
  // files and commits their rows (the sweep relies on that).
  mutable std::mutex write_mutex_;
  // events.db: the writer and one read-only WAL reader for queries (db::Db serialises each).
  std::unique_ptr<db::Db> db_;
};

}  // namespace anju::server
