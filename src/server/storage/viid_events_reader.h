// What the snapshot service reads straight from the events database (read-only): the
// newest records for the live tail and the alarm cursors of the webhook and forwarding, and
// the counts of the traffic and alert reports (docs/viid.md). The event store itself
// (server/events/event_store.h) writes that file; records are fetched through its API.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server::storage {

struct EventHeadRow {
  int64_t seq = 0;
  std::string id, kind;
};

struct TrafficRow {
  int64_t bucket_ms = 0;
  std::string device_id, door;
  int64_t entries = 0, exits = 0;
};

struct AlarmCountRow {
  std::string type, device_id;
  int64_t count = 0, open = 0, last_ms = 0;
  std::string severity;  // the most severe
};

class ViidEventsReader {
 public:
  // Reads EVENTS (the event store's database): on SQLite through a read-only connection of
  // its own on the file, held while the reader lives; on PostgreSQL through one of the
  // pool's connections per call (so a long-lived reader never pins one).
  explicit ViidEventsReader(db::Db& events);
  ViidEventsReader(const ViidEventsReader&) = delete;
  ViidEventsReader& operator=(const ViidEventsReader&) = delete;

  // The newest event sequence number and alarm id (0 = none).
  std::pair<int64_t, int64_t> Newest();
  // Events after SEQ, in order, at most LIMIT.
  std::vector<EventHeadRow> EventsAfter(int64_t seq, int limit);
  // Alarm ids after ID, ascending, at most LIMIT.
  std::vector<int64_t> AlarmsAfter(int64_t id, int limit);
  // Doors opened by access records and exit-button presses per (bucket, device, door):
  // buckets of SIZE_MS at UTC+OFFSET_MS, in [FROM_MS, TO_MS).
  std::vector<TrafficRow> Traffic(int64_t offset_ms, int64_t size_ms, int64_t from_ms,
                                  int64_t to_ms);
  // Alarms per (type, device) in [FROM_MS, TO_MS), most frequent first, at most TOP.
  std::vector<AlarmCountRow> AlarmCounts(int64_t from_ms, int64_t to_ms, int64_t top);

 private:
  template <typename F>
  auto Read(F&& f) {
    if (held_) return f(*held_);
    db::Conn c = pool_->AcquireReader();
    return f(c);
  }

  std::unique_ptr<db::Db> file_;  // SQLite
  std::optional<db::Conn> held_;  // SQLite: file_'s connection
  db::Db* pool_ = nullptr;        // PostgreSQL
};

}  // namespace anju::server::storage
