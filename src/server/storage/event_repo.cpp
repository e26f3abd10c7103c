#include "server/storage/event_repo.h"

#include "core/error.h"
#include "core/sha256.h"

namespace anju::server::storage {

namespace {

constexpr const char* kEventColumns =
    "e.id, e.device_id, e.kind, e.created_ms, e.time_ms, e.received_ms, e.door, e.person, "
    "e.decision, e.alarm_type, e.payload, e.snapshot_bytes, e.snapshot_expired_ms, "
    "(s.event_id IS NOT NULL), e.seq";

constexpr const char* kEventsJoined = " FROM events e LEFT JOIN snapshots s ON s.event_id = e.id";

EventRow ReadEvent(const db::Stmt& s) {
  EventRow r;
  r.id = s.Text(0);
  r.device_id = s.Text(1);
  r.kind = s.Text(2);
  r.created_ms = s.Int(3);
  r.time_ms = s.Int(4);
  r.received_ms = s.Int(5);
  r.door = s.Text(6);
  r.person = s.Text(7);
  r.decision = s.Text(8);
  r.alarm_type = s.Text(9);
  r.payload = s.Text(10);
  r.snapshot_bytes = s.Int(11);
  r.snapshot_expired_ms = s.Int(12);
  r.has_snapshot = s.Int(13) != 0;
  r.seq = s.Int(14);
  return r;
}

EventWhere WhereOf(const EventFilter& f) {
  EventWhere w;
  if (f.from_ms) w.Add("e.time_ms >= ?", f.from_ms);
  if (f.to_ms) w.Add("e.time_ms < ?", f.to_ms);
  if (!f.door.empty()) w.Add("e.door = ?", f.door);
  if (!f.device.empty()) w.Add("e.device_id = ?", f.device);
  if (!f.person.empty()) w.Add("e.person = ?", f.person);
  if (!f.kind.empty()) w.Add("e.kind = ?", f.kind);
  if (!f.decision.empty()) w.Add("e.decision = ?", f.decision);
  if (f.devices) w.AddIn("e.device_id", *f.devices);
  return w;
}

EventWhere DevicesWhere(const std::optional<std::vector<std::string>>& devices) {
  EventWhere w;
  if (devices) w.AddIn("device_id", *devices);
  return w;
}

std::vector<int64_t> DeleteRowsBefore(db::Conn& c, const char* select_sql, const char* delete_sql,
                                      int64_t before_ms, int64_t max) {
  std::vector<int64_t> ids;
  db::Stmt sel(c, select_sql);
  sel.Bind(1, before_ms).Bind(2, max);
  while (sel.Step()) ids.push_back(sel.Int(0));
  db::Stmt del(c, delete_sql);
  for (int64_t id : ids) {
    del.Reset().Bind(1, id);
    del.Step();
  }
  return ids;
}

}  // namespace

// ---- ingestion ----------------------------------------------------------------------------

EventRepo::Writer::Writer(db::Conn& c)
    : exists_(c, "SELECT 1 FROM events WHERE id = ?"),
      event_(c,
             "INSERT INTO events(id, device_id, kind, created_ms, time_ms, received_ms, door, "
             "person, decision, alarm_type, payload, snapshot_bytes) "
             "VALUES(?,?,?,?,?,?,?,?,?,?,?,?)"),
      snapshot_(c, "INSERT INTO snapshots(event_id, time_ms, file, bytes) VALUES(?,?,?,?)"),
      quarantine_(c,
                  "INSERT INTO quarantine(device_id, received_ms, event_id, code, message, raw, "
                  "raw_sha256) VALUES(?,?,?,?,?,?,?) "
                  "ON CONFLICT(device_id, raw_sha256) DO NOTHING") {}

bool EventRepo::Writer::Exists(const std::string& event_id) {
  exists_.Reset().Bind(1, std::string_view(event_id));
  return exists_.Step();
}

void EventRepo::Writer::Insert(const EventRow& r, const std::string& device_id,
                               int64_t received_ms) {
  event_.Reset()
      .Bind(1, std::string_view(r.id))
      .Bind(2, std::string_view(device_id))
      .Bind(3, std::string_view(r.kind))
      .Bind(4, r.created_ms)
      .Bind(5, r.time_ms)
      .Bind(6, received_ms)
      .Bind(7, std::string_view(r.door))
      .Bind(8, std::string_view(r.person))
      .Bind(9, std::string_view(r.decision))
      .Bind(10, std::string_view(r.alarm_type))
      .Bind(11, std::string_view(r.payload))
      .Bind(12, r.snapshot_bytes);
  event_.Step();
}

void EventRepo::Writer::InsertSnapshot(const SnapshotRow& r) {
  snapshot_.Reset()
      .Bind(1, std::string_view(r.event_id))
      .Bind(2, r.time_ms)
      .Bind(3, std::string_view(r.file))
      .Bind(4, r.bytes);
  snapshot_.Step();
}

void EventRepo::Writer::Quarantine(const QuarantineRow& r) {
  quarantine_.Reset()
      .Bind(1, std::string_view(r.device_id))
      .Bind(2, r.received_ms)
      .Bind(3, std::string_view(r.event_id))
      .Bind(4, std::string_view(r.code))
      .Bind(5, std::string_view(r.message))
      .Bind(6, std::string_view(r.raw))
      .Bind(7, std::string_view(Sha256Hex(r.raw.data(), r.raw.size())));
  quarantine_.Step();
}

// ---- queries ------------------------------------------------------------------------------

int64_t EventRepo::Count(db::Conn& c, const EventFilter& f) {
  const EventWhere w = WhereOf(f);
  db::Stmt s(c, "SELECT count(*) FROM events e" + w.sql);
  w.Bind(s);
  return s.Step() ? s.Int(0) : 0;
}

std::vector<EventRow> EventRepo::Page(db::Conn& c, const EventFilter& f,
                                      const std::optional<EventPosition>& after, int64_t limit,
                                      int64_t offset) {
  const EventWhere w = WhereOf(f);
  std::string sql = std::string("SELECT ") + kEventColumns + kEventsJoined + w.sql;
  if (after)
    sql += std::string(w.sql.empty() ? " WHERE " : " AND ") +
           "(e.time_ms < ? OR (e.time_ms = ? AND e.seq < ?))";
  sql += " ORDER BY e.time_ms DESC, e.seq DESC LIMIT ?";
  if (!after) sql += " OFFSET ?";
  db::Stmt s(c, sql);
  int i = w.Bind(s);
  if (after) {
    s.Bind(i++, after->time_ms);
    s.Bind(i++, after->time_ms);
    s.Bind(i++, after->seq);
  }
  s.Bind(i++, limit);
  if (!after) s.Bind(i++, offset);
  std::vector<EventRow> out;
  while (s.Step()) out.push_back(ReadEvent(s));
  return out;
}

void EventRepo::ForEach(db::Conn& c, const EventFilter& f,
                        const std::function<void(const EventRow&)>& fn) {
  const EventWhere w = WhereOf(f);
  db::Stmt s(c, std::string("SELECT ") + kEventColumns + kEventsJoined + w.sql +
                    " ORDER BY e.time_ms DESC, e.seq DESC");
  w.Bind(s);
  while (s.Step()) fn(ReadEvent(s));
}

std::optional<EventRow> EventRepo::Get(db::Conn& c, const std::string& event_id) {
  db::Stmt s(c, std::string("SELECT ") + kEventColumns + kEventsJoined + " WHERE e.id = ?");
  s.Bind(1, std::string_view(event_id));
  if (!s.Step()) return std::nullopt;
  return ReadEvent(s);
}

std::optional<std::string> EventRepo::SnapshotFile(db::Conn& c, const std::string& event_id) {
  db::Stmt s(c, "SELECT file FROM snapshots WHERE event_id = ?");
  s.Bind(1, std::string_view(event_id));
  if (!s.Step()) return std::nullopt;
  return s.Text(0);
}

// ---- retention ----------------------------------------------------------------------------

std::vector<SnapshotRow> EventRepo::SnapshotsBefore(db::Conn& c, int64_t before_ms, int64_t max) {
  db::Stmt sel(c,
               "SELECT event_id, file, bytes, time_ms FROM snapshots WHERE time_ms < ? "
               "ORDER BY time_ms LIMIT ?");
  sel.Bind(1, before_ms).Bind(2, max);
  std::vector<SnapshotRow> out;
  while (sel.Step()) out.push_back({sel.Text(0), sel.Int(3), sel.Text(1), sel.Int(2)});
  return out;
}

void EventRepo::ExpireSnapshots(db::Conn& c, const std::vector<SnapshotRow>& rows, int64_t now_ms) {
  db::Stmt del(c, "DELETE FROM snapshots WHERE event_id = ?");
  db::Stmt mark(c, "UPDATE events SET snapshot_expired_ms = ? WHERE id = ?");
  for (auto& r : rows) {
    del.Reset().Bind(1, std::string_view(r.event_id));
    del.Step();
    mark.Reset().Bind(1, now_ms).Bind(2, std::string_view(r.event_id));
    mark.Step();
  }
}

std::vector<std::string> EventRepo::EventsWithoutSnapshotBefore(db::Conn& c, int64_t before_ms,
                                                                int64_t max) {
  db::Stmt sel(c,
               "SELECT e.id FROM events e WHERE e.time_ms < ? AND NOT EXISTS (SELECT 1 FROM "
               "snapshots s WHERE s.event_id = e.id) ORDER BY e.time_ms LIMIT ?");
  sel.Bind(1, before_ms).Bind(2, max);
  std::vector<std::string> ids;
  while (sel.Step()) ids.push_back(sel.Text(0));
  return ids;
}

void EventRepo::DeleteEvents(db::Conn& c, const std::vector<std::string>& ids) {
  db::Stmt del(c, "DELETE FROM events WHERE id = ?");
  for (auto& id : ids) {
    del.Reset().Bind(1, std::string_view(id));
    del.Step();
  }
}

std::vector<int64_t> EventRepo::DeleteVideoRefsBefore(db::Conn& c, int64_t before_ms, int64_t max) {
  return DeleteRowsBefore(c,
                          "SELECT id FROM video_refs WHERE start_ms < ? ORDER BY start_ms LIMIT ?",
                          "DELETE FROM video_refs WHERE id = ?", before_ms, max);
}

std::vector<int64_t> EventRepo::DeleteQuarantineBefore(db::Conn& c, int64_t before_ms,
                                                       int64_t max) {
  return DeleteRowsBefore(c,
                          "SELECT seq FROM quarantine WHERE received_ms < ? ORDER BY seq LIMIT ?",
                          "DELETE FROM quarantine WHERE seq = ?", before_ms, max);
}

// ---- monthly partitions -----------------------------------------------------------------

const std::vector<std::string>& EventRepo::PartitionedTables() {
  static const std::vector<std::string> t = {"events", "snapshots"};
  return t;
}

void EventRepo::EnsurePartitions(db::Conn& c, int64_t now_ms) {
  EnsureMonthPartitions(c, PartitionedTables(), now_ms);
}

std::vector<Month> EventRepo::SnapshotMonthsBefore(db::Conn& c, int64_t before_ms) {
  return MonthsWhollyBefore(c, "snapshots", before_ms);
}

std::vector<Month> EventRepo::EventMonthsBefore(db::Conn& c, int64_t before_ms) {
  return MonthsWhollyBefore(c, "events", before_ms);
}

std::vector<SnapshotRow> EventRepo::DropSnapshotMonth(db::Conn& c, const Month& m, int64_t now_ms) {
  // The blob keys are in the rows: listed before the month goes (R3.3.2.6, retention).
  db::Stmt sel(c,
               "SELECT event_id, file, bytes, time_ms FROM snapshots WHERE time_ms >= ? AND "
               "time_ms < ? ORDER BY time_ms, event_id");
  sel.Bind(1, m.from_ms).Bind(2, m.to_ms);
  std::vector<SnapshotRow> out;
  while (sel.Step()) out.push_back({sel.Text(0), sel.Int(3), sel.Text(1), sel.Int(2)});
  // What ExpireSnapshots does per row, for the month at once (the events of the month are
  // in their own month: the same time_ms).
  db::Stmt mark(c,
                "UPDATE events SET snapshot_expired_ms = ?1 WHERE time_ms >= ?2 AND time_ms < ?3 "
                "AND id IN (SELECT event_id FROM snapshots WHERE time_ms >= ?2 AND time_ms < ?3)");
  mark.Bind(1, now_ms).Bind(2, m.from_ms).Bind(3, m.to_ms).Run();
  DropMonth(c, "snapshots", m);
  return out;
}

std::optional<std::vector<std::string>> EventRepo::DropEventMonth(db::Conn& c, const Month& m) {
  db::Stmt snaps(c, "SELECT EXISTS(SELECT 1 FROM snapshots WHERE time_ms >= ? AND time_ms < ?)");
  snaps.Bind(1, m.from_ms).Bind(2, m.to_ms);
  if (snaps.Step() && snaps.Int(0) != 0) return std::nullopt;
  db::Stmt sel(c, "SELECT id FROM events WHERE time_ms >= ? AND time_ms < ? ORDER BY time_ms, id");
  sel.Bind(1, m.from_ms).Bind(2, m.to_ms);
  std::vector<std::string> ids;
  while (sel.Step()) ids.push_back(sel.Text(0));
  DropMonth(c, "events", m);
  return ids;
}

// ---- quarantine, video references, counts ---------------------------------------------------

std::vector<QuarantineRow> EventRepo::Quarantined(
    db::Conn& c, const std::optional<std::vector<std::string>>& devices, int64_t limit,
    int64_t offset) {
  const EventWhere w = DevicesWhere(devices);
  db::Stmt s(c, "SELECT seq, device_id, received_ms, event_id, code, message, raw FROM quarantine" +
                    w.sql + " ORDER BY seq LIMIT ? OFFSET ?");
  const int n = w.Bind(s);
  s.Bind(n, limit).Bind(n + 1, offset);
  std::vector<QuarantineRow> out;
  while (s.Step())
    out.push_back({s.Int(0), s.Text(1), s.Int(2), s.Text(3), s.Text(4), s.Text(5), s.Text(6)});
  return out;
}

int64_t EventRepo::QuarantineCount(db::Conn& c,
                                   const std::optional<std::vector<std::string>>& devices) {
  const EventWhere w = DevicesWhere(devices);
  db::Stmt s(c, "SELECT COUNT(*) FROM quarantine" + w.sql);
  w.Bind(s);
  s.Step();
  return s.Int(0);
}

int64_t EventRepo::InsertVideoRef(db::Conn& c, const VideoRefRow& r, int64_t created_ms) {
  db::Stmt s(c,
             "INSERT INTO video_refs(device_id, door, event_id, start_ms, end_ms, uri, "
             "created_ms) VALUES(?,?,?,?,?,?,?) RETURNING id");
  s.Bind(1, std::string_view(r.device_id))
      .Bind(2, std::string_view(r.door))
      .Bind(3, std::string_view(r.event_id))
      .Bind(4, r.start_ms)
      .Bind(5, r.end_ms)
      .Bind(6, std::string_view(r.uri))
      .Bind(7, created_ms);
  if (!s.Step()) throw Error(ErrorCode::kInternal, "events database: INSERT returned no id");
  const int64_t id = s.Int(0);
  s.Run();  // to the end: on SQLite the insert commits here, and its failure surfaces
  return id;
}

std::vector<VideoRefRow> EventRepo::VideoRefs(db::Conn& c, int64_t from_ms, int64_t to_ms) {
  db::Stmt s(c,
             "SELECT id, device_id, door, event_id, start_ms, end_ms, uri FROM video_refs "
             "WHERE start_ms >= ? AND (? = 0 OR start_ms < ?) ORDER BY start_ms, id");
  s.Bind(1, from_ms).Bind(2, to_ms).Bind(3, to_ms);
  std::vector<VideoRefRow> out;
  while (s.Step())
    out.push_back({s.Int(0), s.Text(1), s.Text(2), s.Text(3), s.Int(4), s.Int(5), s.Text(6)});
  return out;
}

EventCounts EventRepo::Counts(db::Conn& c) {
  db::Stmt s(c,
             "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM snapshots), "
             "(SELECT count(*) FROM alarms), (SELECT count(*) FROM quarantine), "
             "(SELECT count(*) FROM video_refs)");
  s.Step();
  return {s.Int(0), s.Int(1), s.Int(2), s.Int(3), s.Int(4)};
}

}  // namespace anju::server::storage
