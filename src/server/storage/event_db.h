// The event database <data>/events.db (docs/events-and-retention.md) on the storage seam
// (db/db.h): its schema as migrations, how it is opened, the retention pragmas, and the
// WHERE builder of the repositories. The event store (events/event_store.h) writes through
// the database's writer connection and queries through its reader; a CSV export opens a
// read-only database of its own. The tables' SQL is in storage/event_repo.h and
// storage/alarm_repo.h. Failures are the seam's anju::Error: kCorrupt for a damaged file or
// one that is not an event store, kStorageFull for a full disk, kUnavailable when busy,
// else kIo.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "db/db.h"

namespace anju::server::storage {

// The events tables, one list per dialect (step N makes the same change in both; step 2,
// events and snapshots partitioned by month, is PostgreSQL's only: a no-op on SQLite).
const db::Migrations& EventsSchema();

// Opens (creating and migrating) FILE for the event store: WAL, synchronous=FULL,
// incremental auto-vacuum, READERS read-only connections beside the writer. A file written
// before the migration list (PRAGMA user_version 1) is adopted as version 1.
std::unique_ptr<db::Db> OpenEventsDb(const std::filesystem::path& file, int readers = 1);
// Opens an existing FILE read-only (a long CSV export): its own connection, so it holds
// up neither uploads nor queries. Error(kNotFound) when the file does not exist.
std::unique_ptr<db::Db> OpenEventsDbReadOnly(const std::filesystem::path& file);

// ---- retention's space reclamation on the writer (SQLite; no-ops on PostgreSQL) ---------

// Pages on the free list.
int64_t FreePages(db::Conn& c);
// Hands back up to PAGES free pages to the file system (incremental auto-vacuum).
void IncrementalVacuum(db::Conn& c, int pages);
// Checkpoints the WAL and truncates it to zero bytes, waiting at most BUSY_MS for readers
// (the connection's usual busy timeout is restored afterwards).
void TruncateWal(db::Conn& c, int busy_ms);

// A WHERE clause being built and the values it binds, in order (the repos' filters).
struct EventWhere {
  std::string sql;  // "" or " WHERE …"
  std::vector<std::variant<int64_t, std::string>> args;
  void Add(const char* cond, int64_t v);
  void Add(const char* cond, const std::string& v);
  // COLUMN IN (VALUES…); an empty list matches nothing.
  void AddIn(const char* column, const std::vector<std::string>& values);
  // Binds the values from parameter FIRST on; returns the next free parameter.
  int Bind(db::Stmt& s, int first = 1) const;
};

}  // namespace anju::server::storage
