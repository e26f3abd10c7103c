#include "server/storage/viid_events_reader.h"

namespace anju::server::storage {

using db::Stmt;

namespace {

std::unique_ptr<db::Db> OpenReadOnly(const std::filesystem::path& path) {
  db::SqliteOptions o;
  o.name = "events";
  o.read_only = true;
  return db::OpenSqlite(path, {}, o);
}

}  // namespace

ViidEventsReader::ViidEventsReader(db::Db& events) {
  if (events.dialect() == db::Dialect::kSqlite) {
    file_ = OpenReadOnly(events.file());
    held_.emplace(file_->Acquire());
  } else {
    pool_ = &events;
  }
}

std::pair<int64_t, int64_t> ViidEventsReader::Newest() {
  return Read([](db::Conn& c) {
    Stmt s(c,
           "SELECT COALESCE(MAX(seq), 0), (SELECT COALESCE(MAX(id), 0) FROM alarms) "
           "FROM events");
    s.Step();
    return std::pair<int64_t, int64_t>{s.Int(0), s.Int(1)};
  });
}

std::vector<EventHeadRow> ViidEventsReader::EventsAfter(int64_t seq, int limit) {
  return Read([&](db::Conn& c) {
    Stmt s(c, "SELECT seq, id, kind FROM events WHERE seq > ? ORDER BY seq LIMIT ?");
    s.Bind(1, seq).Bind(2, limit);
    std::vector<EventHeadRow> out;
    while (s.Step()) out.push_back({s.Int(0), s.Text(1), s.Text(2)});
    return out;
  });
}

std::vector<int64_t> ViidEventsReader::AlarmsAfter(int64_t id, int limit) {
  return Read([&](db::Conn& c) {
    Stmt s(c, "SELECT id FROM alarms WHERE id > ? ORDER BY id LIMIT ?");
    s.Bind(1, id).Bind(2, limit);
    std::vector<int64_t> out;
    while (s.Step()) out.push_back(s.Int(0));
    return out;
  });
}

std::vector<TrafficRow> ViidEventsReader::Traffic(int64_t offset_ms, int64_t size_ms,
                                                  int64_t from_ms, int64_t to_ms) {
  return Read([&](db::Conn& c) {
    // A stored payload SQLite cannot parse (nested deeper than its limit, stored before
    // intake limits) counts as no exit instead of failing the whole report. PostgreSQL
    // holds only payloads that passed the intake limits.
    const char* exit_button =
        c.dialect() == db::Dialect::kPostgres
            ? "CAST(payload AS JSONB) ->> 'event' = 'exit_button'"
            : "CASE WHEN json_valid(payload) THEN json_extract(payload, '$.event') END = "
              "'exit_button'";
    Stmt s(c, std::string("SELECT ((time_ms + ?1) / ?2) * ?2 - ?1 AS b, device_id, door, "
                          "SUM(CASE WHEN kind = 'access' AND decision = 'open' THEN 1 ELSE 0 "
                          "END), SUM(CASE WHEN kind = 'door_event' AND ") +
                  exit_button +
                  " THEN 1 ELSE 0 END) FROM events WHERE time_ms >= ?3 AND time_ms < ?4 "
                  "GROUP BY b, device_id, door");
    s.Bind(1, offset_ms).Bind(2, size_ms).Bind(3, from_ms).Bind(4, to_ms);
    std::vector<TrafficRow> out;
    while (s.Step()) out.push_back({s.Int(0), s.Text(1), s.Text(2), s.Int(3), s.Int(4)});
    return out;
  });
}

std::vector<AlarmCountRow> ViidEventsReader::AlarmCounts(int64_t from_ms, int64_t to_ms,
                                                         int64_t top) {
  return Read([&](db::Conn& c) {
    Stmt s(c,
           "SELECT type, device_id, COUNT(*) AS n, SUM(CASE WHEN state = 'new' THEN 1 ELSE 0 "
           "END), MAX(time_ms), MIN(severity) FROM alarms WHERE time_ms >= ? AND time_ms < ? "
           "GROUP BY type, device_id ORDER BY n DESC, MAX(time_ms) DESC LIMIT ?");
    s.Bind(1, from_ms).Bind(2, to_ms).Bind(3, top);
    std::vector<AlarmCountRow> out;
    while (s.Step()) out.push_back({s.Text(0), s.Text(1), s.Int(2), s.Int(3), s.Int(4), s.Text(5)});
    return out;
  });
}

}  // namespace anju::server::storage
