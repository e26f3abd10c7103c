#include "server/storage/event_db.h"

#include <sqlite3.h>

#include "core/error.h"

namespace anju::server::storage {

namespace fs = std::filesystem;

namespace {

constexpr int32_t kApplicationId = 0x414E4A45;  // "ANJE"
constexpr int kFormatVersion = 1;               // PRAGMA user_version

[[noreturn]] void Fail(sqlite3* db, int rc, const std::string& what) {
  store::ThrowSqliteError(db, rc, what, "event database",
                          "事件库已损坏 / event database is damaged or not an event store",
                          "磁盘已满 / disk full writing events");
}

void ExecSql(sqlite3* db, const char* sql) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    Fail(nullptr, rc, std::string(sql).substr(0, 48) + ": " + msg);
  }
}

}  // namespace

EventStmt::EventStmt(sqlite3* db, const char* sql) : SqliteStmt(db, sql, Fail) {}
EventStmt::EventStmt(sqlite3* db, const std::string& sql) : SqliteStmt(db, sql.c_str(), Fail) {}

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
    sql += "0";
    return;
  }
  sql += std::string(column) + " IN (";
  for (size_t i = 0; i < values.size(); ++i) {
    sql += i ? ",?" : "?";
    args.emplace_back(values[i]);
  }
  sql += ")";
}

int EventWhere::Bind(EventStmt& s, int first) const {
  int i = first;
  for (auto& a : args) {
    if (auto* n = std::get_if<int64_t>(&a))
      s.Bind(i++, *n);
    else
      s.Bind(i++, std::string_view(std::get<std::string>(a)));
  }
  return i;
}

EventDb::EventDb(const fs::path& file, Mode mode) {
  const int flags = mode == Mode::kExport
                        ? SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
                        : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(file.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error(ErrorCode::kIo, mode == Mode::kExport
                                    ? "cannot open event database for export: " + msg
                                    : "cannot open event database " + file.string() + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 10000);
  try {
    if (mode == Mode::kWrite) CreateSchema(file);
    if (mode == Mode::kRead) Exec("PRAGMA query_only=1");
  } catch (...) {
    sqlite3_close(db_);
    throw;
  }
}

EventDb::~EventDb() {
  sqlite3_close(db_);
}

void EventDb::Exec(const char* sql) {
  ExecSql(db_, sql);
}

void EventDb::SetBusyTimeout(int ms) {
  sqlite3_busy_timeout(db_, ms);
}

int64_t EventDb::FreePages() {
  EventStmt s(db_, "PRAGMA freelist_count");
  return s.Step() ? s.Int(0) : 0;
}

void EventDb::IncrementalVacuum(int pages) {
  Exec(("PRAGMA incremental_vacuum(" + std::to_string(pages) + ")").c_str());
}

void EventDb::TruncateWal() {
  Exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

void EventDb::CreateSchema(const fs::path& file) {
  sqlite3* db = db_;
  int64_t app_id = 0, tables = 0;
  {
    EventStmt s(db, "PRAGMA application_id");
    if (s.Step()) app_id = s.Int(0);
  }
  {
    EventStmt s(db, "SELECT count(*) FROM sqlite_master");
    if (s.Step()) tables = s.Int(0);
  }
  const bool fresh = app_id == 0 && tables == 0;
  if (!fresh && app_id != kApplicationId)
    throw Error(ErrorCode::kCorrupt, file.string() + " 不是事件库 / is not an anju event database");
  // Set before the first table exists: retention can then hand pages back.
  if (fresh) Exec("PRAGMA auto_vacuum=INCREMENTAL");
  {
    EventStmt s(db, "PRAGMA journal_mode=WAL");
    if (!s.Step() || s.Text(0) != "wal")
      throw Error(ErrorCode::kIo, "cannot switch " + file.string() + " to WAL mode");
  }
  // FULL: a batch acknowledged to a terminal survives power loss, not only a crash.
  Exec("PRAGMA synchronous=FULL");
  Exec("PRAGMA foreign_keys=OFF");
  if (!fresh) {
    EventStmt s(db, "PRAGMA user_version");
    if (!s.Step() || s.Int(0) != kFormatVersion)
      throw Error(ErrorCode::kCorrupt, "unsupported event database format in " + file.string());
    return;
  }
  EventTxn txn(*this, true);
  Exec(
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
      "CREATE INDEX video_refs_start ON video_refs(start_ms);");
  Exec(("PRAGMA application_id=" + std::to_string(kApplicationId) +
        "; PRAGMA user_version=" + std::to_string(kFormatVersion))
           .c_str());
  txn.Commit();
}

EventTxn::EventTxn(EventDb& db, bool immediate) : db_(db) {
  db_.Exec(immediate ? "BEGIN IMMEDIATE" : "BEGIN");
}

EventTxn::~EventTxn() {
  if (open_) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
}

void EventTxn::Commit() {
  db_.Exec("COMMIT");
  open_ = false;
}

}  // namespace anju::server::storage
