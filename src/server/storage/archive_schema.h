// Schema migrations of archive.db, oldest first, for SQLite and PostgreSQL (step N makes
// the same change in both; docs/storage.md). Never edit a released migration: add a new one
// at the end of both lists (db::Db applies those newer than the stored version).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "db/db.h"
#include "db/postgres.h"

namespace anju::server {

// The SQLite steps (ArchiveSchema().sqlite).
const std::vector<std::string>& ArchiveMigrations();
// Both dialects' steps.
const db::Migrations& ArchiveSchema();

// Opens (creating and migrating) the archive database FILE: SQLite, WAL, synchronous=FULL.
std::unique_ptr<db::Db> OpenArchiveDb(const std::filesystem::path& file);
// Opens (migrating) the archive in the PostgreSQL database at URL (distributed mode,
// docs/distributed.md; the server chooses between the two in storage/databases.h). The
// audit key then needs each server's own head file: docs/storage.md.
std::unique_ptr<db::Db> OpenArchivePostgres(const std::string& url,
                                            db::PostgresOptions options = {});

}  // namespace anju::server
