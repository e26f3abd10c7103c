// Alarms and their handling log in events.db (R3.2.1.1; docs/events-and-retention.md).
// Rows in, rows out; the state machine lives in events/event_store.h. Every function runs
// on the caller's connection and, where it matters, in the caller's transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "server/storage/event_db.h"

namespace anju::server::storage {

// Filters are ANDed; empty / 0 means "any".
struct AlarmFilter {
  int64_t from_ms = 0, to_ms = 0;
  std::string state, type, door, device;
  std::optional<std::vector<std::string>> devices;  // none = every device; empty = none
};

struct AlarmRow {
  int64_t id = 0;  // read only
  std::string event_id, device_id, type, severity, door, person;
  int64_t time_ms = 0;
  std::string description;
  std::string state;  // new | acknowledged | closed
  std::string acknowledged_by;
  int64_t acknowledged_ms = 0;
  std::string acknowledge_note;
  std::string closed_by;
  int64_t closed_ms = 0;
  std::string close_note;
};

class AlarmRepo {
 public:
  // The alarm insert of one upload, prepared once for the whole batch.
  class Writer {
   public:
    explicit Writer(db::Conn& c);
    // A new alarm (state "new"); an event that already has one keeps it.
    void Insert(const AlarmRow& row);

   private:
    db::Stmt insert_;
  };

  static int64_t Count(db::Conn& c, const AlarmFilter& f);
  // Newest first.
  static std::vector<AlarmRow> List(db::Conn& c, const AlarmFilter& f, int64_t limit,
                                    int64_t offset);
  static std::optional<AlarmRow> Get(db::Conn& c, int64_t id);
  static std::optional<std::string> State(db::Conn& c, int64_t id);
  // Moves the alarm to TO ("acknowledged" fills the acknowledged_* columns, "closed" the
  // closed_* ones) and logs the action FROM → TO.
  static void SetState(db::Conn& c, int64_t id, const std::string& from, const std::string& to,
                       const std::string& actor, const std::string& note, int64_t now_ms);
  // Closed alarms of these events and their logs (open alarms stay).
  static void DeleteClosedOf(db::Conn& c, const std::vector<std::string>& event_ids);
  // The same for every event with a time in [FROM_MS, TO_MS), in one statement each (a
  // month of events dropped at once, storage/partitions.h).
  static void DeleteClosedOfEventsIn(db::Conn& c, int64_t from_ms, int64_t to_ms);
};

}  // namespace anju::server::storage
