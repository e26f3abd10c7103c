// The event database file <data>/events.db (docs/events-and-retention.md): its connections,
// schema and pragmas. The event store (events/event_store.h) keeps one connection for writes
// and one for queries; a CSV export opens a read-only one of its own. The tables' SQL is in
// storage/event_repo.h and storage/alarm_repo.h; every failure is an anju::Error (kCorrupt
// for a damaged file or one that is not an event store, kUnavailable for a full disk, else
// kIo).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "store/sqlite_stmt.h"

namespace anju::server::storage {

// A statement on the event database, failing with the event database's errors.
class EventStmt : public store::SqliteStmt {
 public:
  EventStmt(sqlite3* db, const char* sql);
  EventStmt(sqlite3* db, const std::string& sql);
};

// A WHERE clause being built and the values it binds, in order (the repos' filters).
struct EventWhere {
  std::string sql;  // "" or " WHERE …"
  std::vector<std::variant<int64_t, std::string>> args;
  void Add(const char* cond, int64_t v);
  void Add(const char* cond, const std::string& v);
  // COLUMN IN (VALUES…); an empty list matches nothing.
  void AddIn(const char* column, const std::vector<std::string>& values);
  // Binds the values from parameter FIRST on; returns the next free parameter.
  int Bind(EventStmt& s, int first = 1) const;
};

// One connection to events.db.
class EventDb {
 public:
  enum class Mode {
    kWrite,   // creates the file and its schema when absent; WAL, synchronous=FULL
    kRead,    // query_only, shares the WAL with the writer
    kExport,  // a read-only open (SQLITE_OPEN_READONLY) for one long export
  };
  EventDb(const std::filesystem::path& file, Mode mode);
  ~EventDb();
  EventDb(const EventDb&) = delete;
  EventDb& operator=(const EventDb&) = delete;

  sqlite3* get() const { return db_; }
  void Exec(const char* sql);
  void SetBusyTimeout(int ms);

  // Pages on the free list; hands back up to PAGES of them (incremental auto-vacuum).
  int64_t FreePages();
  void IncrementalVacuum(int pages);
  // Checkpoints the WAL and truncates it to zero bytes.
  void TruncateWal();

 private:
  void CreateSchema(const std::filesystem::path& file);
  sqlite3* db_ = nullptr;
};

// One transaction on an EventDb: rolled back unless committed.
class EventTxn {
 public:
  // IMMEDIATE takes the write lock at once (writers); a deferred one is a read snapshot.
  EventTxn(EventDb& db, bool immediate);
  ~EventTxn();
  EventTxn(const EventTxn&) = delete;
  EventTxn& operator=(const EventTxn&) = delete;
  void Commit();

 private:
  EventDb& db_;
  bool open_ = true;
};

}  // namespace anju::server::storage
