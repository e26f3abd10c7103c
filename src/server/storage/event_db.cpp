#include "server/storage/event_db.h"

#include "core/error.h"
#include "server/storage/partitions.h"
#include "server/storage/platform_repo.h"

namespace anju::server::storage {

namespace fs = std::filesystem;

namespace {

// PRAGMA application_id of every events.db ("ANJE"): a file without it that has tables is
// another kind of database, refused before anything writes to it.
constexpr int64_t kApplicationId = 0x414E4A45;
constexpr int kBusyTimeoutMs = 10000;

// Error(kCorrupt) unless FILE is absent, empty, or an event store (by its application id):
// migrations must never run on, nor WAL be switched on for, someone else's database.
void RefuseAnotherKind(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec) || fs::file_size(file, ec) == 0) return;
  db::SqliteOptions o;
  o.name = "events";
  o.read_only = true;
  o.foreign_keys = false;
  o.busy_timeout_ms = kBusyTimeoutMs;
  auto probe = db::OpenSqlite(file, {}, o);  // a file that is no database: kCorrupt
  auto c = probe->Acquire();
  db::Stmt tables(c, "SELECT count(*) FROM sqlite_master");
  db::Stmt id(c, "PRAGMA application_id");
  if (tables.Step() && tables.Int(0) > 0 && id.Step() && id.Int(0) != kApplicationId)
    throw Error(ErrorCode::kCorrupt, file.string() + " 不是事件库 / is not an anju event database");
}

// Migration 2 on PostgreSQL: every row carried over inside the migration's transaction.
std::string PostgresPartitionEvents() {
  const std::string now = "(extract(epoch FROM now()) * 1000)::bigint";
  const std::string back = "(extract(epoch FROM now() - interval '" + std::to_string(kMonthsBack) +
                           " months') * 1000)::bigint";
  const std::string ahead = "(extract(epoch FROM now() + interval '" +
                            std::to_string(kMonthsAhead) + " months') * 1000)::bigint";
  return EnsureMonthPartitionsFunctionSql() +
         "ALTER TABLE events RENAME TO events_unpartitioned;"
         "ALTER TABLE snapshots RENAME TO snapshots_unpartitioned;"
         "DROP INDEX events_time, events_door, events_device, events_person, events_kind,"
         " snapshots_time;"
         "CREATE SEQUENCE events_seq;"
         "CREATE TABLE events("
         " seq BIGINT NOT NULL DEFAULT nextval('events_seq'),"
         " id TEXT NOT NULL,"
         " device_id TEXT NOT NULL,"
         " kind TEXT NOT NULL,"
         " created_ms BIGINT NOT NULL,"
         " time_ms BIGINT NOT NULL,"
         " received_ms BIGINT NOT NULL,"
         " door TEXT NOT NULL,"
         " person TEXT NOT NULL,"
         " decision TEXT NOT NULL,"
         " alarm_type TEXT NOT NULL,"
         " payload TEXT NOT NULL,"
         " snapshot_bytes BIGINT NOT NULL DEFAULT 0,"
         " snapshot_expired_ms BIGINT NOT NULL DEFAULT 0) PARTITION BY RANGE (time_ms);"
         "ALTER SEQUENCE events_seq OWNED BY events.seq;"
         "CREATE TABLE events_default PARTITION OF events DEFAULT;"
         "CREATE TABLE snapshots("
         " event_id TEXT NOT NULL,"
         " time_ms BIGINT NOT NULL,"
         " file TEXT NOT NULL,"
         " bytes BIGINT NOT NULL) PARTITION BY RANGE (time_ms);"
         "CREATE TABLE snapshots_default PARTITION OF snapshots DEFAULT;"
         // The months of the rows there are (not older than kMonthsBack) up to the ones
         // ahead; both tables get the same months.
         "SELECT ensure_month_partitions(t, GREATEST(COALESCE((SELECT MIN(time_ms) FROM "
         "events_unpartitioned), " +
         now + "), " + back + "), " + ahead +
         ") FROM unnest(ARRAY['events', 'snapshots']) t;"
         "INSERT INTO events(seq, id, device_id, kind, created_ms, time_ms, received_ms, door,"
         " person, decision, alarm_type, payload, snapshot_bytes, snapshot_expired_ms)"
         " SELECT seq, id, device_id, kind, created_ms, time_ms, received_ms, door, person,"
         " decision, alarm_type, payload, snapshot_bytes, snapshot_expired_ms"
         " FROM events_unpartitioned;"
         "SELECT setval('events_seq', COALESCE((SELECT MAX(seq) FROM events), 0) + 1, false);"
         "INSERT INTO snapshots(event_id, time_ms, file, bytes)"
         " SELECT event_id, time_ms, file, bytes FROM snapshots_unpartitioned;"
         "DROP TABLE events_unpartitioned, snapshots_unpartitioned;"
         // Keys and indexes after the copy (one build instead of row-by-row upkeep).
         "ALTER TABLE events ADD PRIMARY KEY (id, time_ms);"
         "ALTER TABLE snapshots ADD PRIMARY KEY (event_id, time_ms);"
         "CREATE INDEX events_time ON events(time_ms);"
         "CREATE INDEX events_door ON events(door, time_ms);"
         "CREATE INDEX events_device ON events(device_id, time_ms);"
         "CREATE INDEX events_person ON events(person, time_ms);"
         "CREATE INDEX events_kind ON events(kind, decision, time_ms);"
         // seq was the key: the events tail (storage/viid_events_reader.h) reads by it.
         "CREATE INDEX events_by_seq ON events(seq);"
         "CREATE INDEX snapshots_time ON snapshots(time_ms);";
}

}  // namespace

const db::Migrations& EventsSchema() {
  static const db::Migrations m{
      /*sqlite=*/{
          // 1: the schema anju wrote before the migration list (PRAGMA user_version 1),
          // verbatim, so that such a file is this version. AUTOINCREMENT and WITHOUT ROWID
          // stay for that reason. The application id is stamped in the same transaction,
          // so a file is never left with tables but without it.
          "PRAGMA application_id=" + std::to_string(kApplicationId) +
              ";"
              "CREATE TABLE events("
              " seq INTEGER PRIMARY KEY,"
              " id TEXT NOT NULL UNIQUE,"
              " device_id TEXT NOT NULL,"
              " kind TEXT NOT NULL,"
              " created_ms INTEGER NOT NULL,"
              " time_ms INTEGER NOT NULL,"
              " received_ms INTEGER NOT NULL,"
              " door TEXT NOT NULL,"
              " person TEXT NOT NULL,"
              " decision TEXT NOT NULL,"
              " alarm_type TEXT NOT NULL,"
              " payload TEXT NOT NULL,"
              " snapshot_bytes INTEGER NOT NULL DEFAULT 0,"
              " snapshot_expired_ms INTEGER NOT NULL DEFAULT 0);"
              "CREATE INDEX events_time ON events(time_ms);"
              "CREATE INDEX events_door ON events(door, time_ms);"
              "CREATE INDEX events_device ON events(device_id, time_ms);"
              "CREATE INDEX events_person ON events(person, time_ms);"
              "CREATE INDEX events_kind ON events(kind, decision, time_ms);"
              "CREATE TABLE snapshots("
              " event_id TEXT PRIMARY KEY,"
              " time_ms INTEGER NOT NULL,"
              " file TEXT NOT NULL,"
              " bytes INTEGER NOT NULL) WITHOUT ROWID;"
              "CREATE INDEX snapshots_time ON snapshots(time_ms);"
              "CREATE TABLE alarms("
              " id INTEGER PRIMARY KEY AUTOINCREMENT,"
              " event_id TEXT NOT NULL UNIQUE,"
              " device_id TEXT NOT NULL,"
              " type TEXT NOT NULL,"
              " severity TEXT NOT NULL,"
              " door TEXT NOT NULL,"
              " person TEXT NOT NULL,"
              " time_ms INTEGER NOT NULL,"
              " description TEXT NOT NULL,"
              " state TEXT NOT NULL,"
              " acknowledged_by TEXT NOT NULL DEFAULT '',"
              " acknowledged_ms INTEGER NOT NULL DEFAULT 0,"
              " acknowledge_note TEXT NOT NULL DEFAULT '',"
              " closed_by TEXT NOT NULL DEFAULT '',"
              " closed_ms INTEGER NOT NULL DEFAULT 0,"
              " close_note TEXT NOT NULL DEFAULT '');"
              "CREATE INDEX alarms_time ON alarms(time_ms);"
              "CREATE INDEX alarms_state ON alarms(state, time_ms);"
              "CREATE TABLE alarm_actions("
              " seq INTEGER PRIMARY KEY,"
              " alarm_id INTEGER NOT NULL,"
              " from_state TEXT NOT NULL,"
              " to_state TEXT NOT NULL,"
              " actor TEXT NOT NULL,"
              " note TEXT NOT NULL,"
              " at_ms INTEGER NOT NULL);"
              "CREATE INDEX alarm_actions_alarm ON alarm_actions(alarm_id);"
              "CREATE TABLE quarantine("
              " seq INTEGER PRIMARY KEY,"
              " device_id TEXT NOT NULL,"
              " received_ms INTEGER NOT NULL,"
              " event_id TEXT NOT NULL,"
              " code TEXT NOT NULL,"
              " message TEXT NOT NULL,"
              " raw TEXT NOT NULL,"
              " raw_sha256 TEXT NOT NULL,"
              " UNIQUE(device_id, raw_sha256));"
              "CREATE INDEX quarantine_time ON quarantine(received_ms);"
              "CREATE TABLE video_refs("
              " id INTEGER PRIMARY KEY,"
              " device_id TEXT NOT NULL,"
              " door TEXT NOT NULL,"
              " event_id TEXT NOT NULL,"
              " start_ms INTEGER NOT NULL,"
              " end_ms INTEGER NOT NULL,"
              " uri TEXT NOT NULL,"
              " created_ms INTEGER NOT NULL);"
              "CREATE INDEX video_refs_start ON video_refs(start_ms);",
          // 2: nothing (PostgreSQL partitions events by month; SQLite keeps one table and
          // retention deletes rows, docs/storage.md).
          "",
          // 3: the three-level platform (docs/platform.md): the uplink outbox and an upper
          // level's links, records, commands, scopes and notices.
          PlatformTablesSql(db::Dialect::kSqlite),
      },
      /*postgres=*/{
          // 1: the same tables; keys from identities, times and sizes as BIGINT.
          "CREATE TABLE events("
          " seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
          " id TEXT NOT NULL UNIQUE,"
          " device_id TEXT NOT NULL,"
          " kind TEXT NOT NULL,"
          " created_ms BIGINT NOT NULL,"
          " time_ms BIGINT NOT NULL,"
          " received_ms BIGINT NOT NULL,"
          " door TEXT NOT NULL,"
          " person TEXT NOT NULL,"
          " decision TEXT NOT NULL,"
          " alarm_type TEXT NOT NULL,"
          " payload TEXT NOT NULL,"
          " snapshot_bytes BIGINT NOT NULL DEFAULT 0,"
          " snapshot_expired_ms BIGINT NOT NULL DEFAULT 0);"
          "CREATE INDEX events_time ON events(time_ms);"
          "CREATE INDEX events_door ON events(door, time_ms);"
          "CREATE INDEX events_device ON events(device_id, time_ms);"
          "CREATE INDEX events_person ON events(person, time_ms);"
          "CREATE INDEX events_kind ON events(kind, decision, time_ms);"
          "CREATE TABLE snapshots("
          " event_id TEXT PRIMARY KEY,"
          " time_ms BIGINT NOT NULL,"
          " file TEXT NOT NULL,"
          " bytes BIGINT NOT NULL);"
          "CREATE INDEX snapshots_time ON snapshots(time_ms);"
          "CREATE TABLE alarms("
          " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
          " event_id TEXT NOT NULL UNIQUE,"
          " device_id TEXT NOT NULL,"
          " type TEXT NOT NULL,"
          " severity TEXT NOT NULL,"
          " door TEXT NOT NULL,"
          " person TEXT NOT NULL,"
          " time_ms BIGINT NOT NULL,"
          " description TEXT NOT NULL,"
          " state TEXT NOT NULL,"
          " acknowledged_by TEXT NOT NULL DEFAULT '',"
          " acknowledged_ms BIGINT NOT NULL DEFAULT 0,"
          " acknowledge_note TEXT NOT NULL DEFAULT '',"
          " closed_by TEXT NOT NULL DEFAULT '',"
          " closed_ms BIGINT NOT NULL DEFAULT 0,"
          " close_note TEXT NOT NULL DEFAULT '');"
          "CREATE INDEX alarms_time ON alarms(time_ms);"
          "CREATE INDEX alarms_state ON alarms(state, time_ms);"
          "CREATE TABLE alarm_actions("
          " seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
          " alarm_id BIGINT NOT NULL,"
          " from_state TEXT NOT NULL,"
          " to_state TEXT NOT NULL,"
          " actor TEXT NOT NULL,"
          " note TEXT NOT NULL,"
          " at_ms BIGINT NOT NULL);"
          "CREATE INDEX alarm_actions_alarm ON alarm_actions(alarm_id);"
          "CREATE TABLE quarantine("
          " seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
          " device_id TEXT NOT NULL,"
          " received_ms BIGINT NOT NULL,"
          " event_id TEXT NOT NULL,"
          " code TEXT NOT NULL,"
          " message TEXT NOT NULL,"
          " raw TEXT NOT NULL,"
          " raw_sha256 TEXT NOT NULL,"
          " UNIQUE(device_id, raw_sha256));"
          "CREATE INDEX quarantine_time ON quarantine(received_ms);"
          "CREATE TABLE video_refs("
          " id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
          " device_id TEXT NOT NULL,"
          " door TEXT NOT NULL,"
          " event_id TEXT NOT NULL,"
          " start_ms BIGINT NOT NULL,"
          " end_ms BIGINT NOT NULL,"
          " uri TEXT NOT NULL,"
          " created_ms BIGINT NOT NULL);"
          "CREATE INDEX video_refs_start ON video_refs(start_ms);",
          // 2: events and snapshots partitioned by calendar month of time_ms (R3.3.2.5),
          // so that retention drops whole months (storage/partitions.h). A partitioned
          // table's keys must hold time_ms: (id, time_ms) keeps "one row per event id"
          // for every retried upload, whose time comes from the terminal's outbox entry
          // and is the same each time; Writer::Exists looks the id up in every month
          // before an insert. seq draws from a sequence (no identity on partitioned
          // tables in PostgreSQL 15) and keeps its values: cursors stay valid.
          PostgresPartitionEvents(),
          // 3: as on SQLite.
          PlatformTablesSql(db::Dialect::kPostgres),
      }};
  return m;
}

std::unique_ptr<db::Db> OpenEventsDb(const fs::path& file, int readers) {
  db::SqliteOptions o;
  o.name = "events";
  o.readers = readers;
  // Set before the first table exists: retention can then hand pages back.
  o.incremental_vacuum = true;
  o.foreign_keys = false;
  o.busy_timeout_ms = kBusyTimeoutMs;
  RefuseAnotherKind(file);
  return db::OpenSqlite(file, EventsSchema(), o);
}

std::unique_ptr<db::Db> OpenEventsDbReadOnly(const fs::path& file) {
  RefuseAnotherKind(file);
  db::SqliteOptions o;
  o.name = "events";
  o.read_only = true;
  o.foreign_keys = false;
  o.busy_timeout_ms = kBusyTimeoutMs;
  return db::OpenSqlite(file, EventsSchema(), o);
}

int64_t FreePages(db::Conn& c) {
  if (c.dialect() != db::Dialect::kSqlite) return 0;
  db::Stmt s(c, "PRAGMA freelist_count");
  return s.Step() ? s.Int(0) : 0;
}

void IncrementalVacuum(db::Conn& c, int pages) {
  if (c.dialect() != db::Dialect::kSqlite) return;
  c.Exec("PRAGMA incremental_vacuum(" + std::to_string(pages) + ")");
}

void TruncateWal(db::Conn& c, int busy_ms) {
  if (c.dialect() != db::Dialect::kSqlite) return;
  c.Exec("PRAGMA busy_timeout=" + std::to_string(busy_ms));
  try {
    c.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  } catch (...) {
    c.Exec("PRAGMA busy_timeout=" + std::to_string(kBusyTimeoutMs));
    throw;
  }
  c.Exec("PRAGMA busy_timeout=" + std::to_string(kBusyTimeoutMs));
}

void EventWhere::Add(const char* cond, int64_t v) {
  sql += sql.empty() ? " WHERE " : " AND ";
  sql += cond;
  args.emplace_back(v);
}

void EventWhere::Add(const char* cond, const std::string& v) {
  sql += sql.empty() ? " WHERE " : " AND ";
  sql += cond;
  args.emplace_back(v);
}

void EventWhere::AddIn(const char* column, const std::vector<std::string>& values) {
  sql += sql.empty() ? " WHERE " : " AND ";
  if (values.empty()) {
    sql += "1 = 0";  // a boolean on both dialects (PostgreSQL refuses a bare 0)
    return;
  }
  sql += std::string(column) + " IN (";
  for (size_t i = 0; i < values.size(); ++i) {
    sql += i ? ",?" : "?";
    args.emplace_back(values[i]);
  }
  sql += ")";
}

int EventWhere::Bind(db::Stmt& s, int first) const {
  int i = first;
  for (auto& a : args) {
    if (auto* n = std::get_if<int64_t>(&a))
      s.Bind(i++, *n);
    else
      s.Bind(i++, std::string_view(std::get<std::string>(a)));
  }
  return i;
}

}  // namespace anju::server::storage
