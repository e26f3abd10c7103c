// Where the server's three databases live (ServerOptions::database, docs/distributed.md):
//   ""                   SQLite files in the data directory (archive.db, events.db,
//                        captures.db): the embedded default, one process;
//   "postgresql://…"     three schemas of one PostgreSQL database (archive, events,
//                        captures), shared by every API server and worker of the
//                        installation (R3.1.4.3, R3.3.2.5).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "db/db.h"

namespace anju::server::storage {

// A PostgreSQL URL ("postgresql://…" or "postgres://…").
bool IsPostgresUrl(const std::string& database);
// Error(kInvalidArgument) unless DATABASE is "" or a PostgreSQL URL.
void CheckDatabaseLocation(const std::string& database);

// Each opens (creating and migrating) its database at DATABASE; DATA_DIR holds the SQLite
// files. Error(kUnavailable) when PostgreSQL cannot be reached.
std::unique_ptr<db::Db> OpenArchiveAt(const std::string& database,
                                      const std::filesystem::path& data_dir);
std::unique_ptr<db::Db> OpenEventsAt(const std::string& database,
                                     const std::filesystem::path& data_dir);
std::unique_ptr<db::Db> OpenCapturesAt(const std::string& database,
                                       const std::filesystem::path& data_dir);

}  // namespace anju::server::storage
