#include "server/storage/databases.h"

#include "core/clock.h"
#include "core/error.h"
#include "db/postgres.h"
#include "server/storage/archive_schema.h"
#include "server/storage/capture_repo.h"
#include "server/storage/captures_schema.h"
#include "server/storage/event_db.h"
#include "server/storage/event_repo.h"
#include "server/storage/partitions.h"

namespace anju::server::storage {

namespace {

// Connections per database and process: request threads and recognition workers lease
// them briefly; the pool opens them only when first needed.
constexpr int kPoolSize = 8;

db::PostgresOptions InSchema(const char* name) {
  db::PostgresOptions o;
  o.name = name;
  o.schema = name;
  o.pool_size = kPoolSize;
  return o;
}

// The month partitions from now on (R3.3.2.5, storage/partitions.h): a server started
// after a long pause finds this month's ready even before its first retention run.
void PrepareMonths(db::Db& db, const std::vector<std::string>& tables) {
  auto c = db.Acquire();
  EnsureMonthPartitions(c, tables, NowMs());
}

}  // namespace

bool IsPostgresUrl(const std::string& database) {
  return database.starts_with("postgresql://") || database.starts_with("postgres://");
}

void CheckDatabaseLocation(const std::string& database) {
  if (!database.empty() && !IsPostgresUrl(database))
    throw Error(ErrorCode::kInvalidArgument,
                "database 须为空（本机 SQLite）或 postgresql:// 地址 / database must be empty "
                "(SQLite files in the data directory) or a postgresql:// URL, got \"" +
                    database + "\"");
}

std::unique_ptr<db::Db> OpenArchiveAt(const std::string& database,
                                      const std::filesystem::path& data_dir) {
  CheckDatabaseLocation(database);
  if (database.empty()) return OpenArchiveDb(data_dir / "archive.db");
  return db::OpenPostgres(database, ArchiveSchema(), InSchema("archive"));
}

std::unique_ptr<db::Db> OpenEventsAt(const std::string& database,
                                     const std::filesystem::path& data_dir) {
  CheckDatabaseLocation(database);
  if (database.empty()) return OpenEventsDb(data_dir / "events.db");
  auto db = db::OpenPostgres(database, EventsSchema(), InSchema("events"));
  PrepareMonths(*db, EventRepo::PartitionedTables());
  return db;
}

std::unique_ptr<db::Db> OpenCapturesAt(const std::string& database,
                                       const std::filesystem::path& data_dir) {
  CheckDatabaseLocation(database);
  if (database.empty()) return OpenCapturesDb(data_dir / "captures.db");
  auto db = db::OpenPostgres(database, CapturesMigrations(), InSchema("captures"));
  PrepareMonths(*db, CaptureRepo::PartitionedTables());
  return db;
}

}  // namespace anju::server::storage
