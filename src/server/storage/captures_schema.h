// captures.db, the snapshot service's own database (docs/viid.md): cameras, capture
// records and their sealed images and clips, stranger clusters, alert rules and their
// de-duplication state, the webhook and forwarding outboxes and their settings.
#pragma once

#include <filesystem>
#include <memory>

#include "db/db.h"

namespace anju::server::storage {

// The schema steps for SQLite and PostgreSQL (db/db.h); a PostgreSQL database for the
// captures is opened with db::OpenPostgres(url, CapturesMigrations()). Step 5 partitions
// captures, capture_images and capture_clips by month on PostgreSQL (a no-op on SQLite;
// storage/partitions.h).
const db::Migrations& CapturesMigrations();
// Opens (creating and migrating) FILE: SQLite, WAL, synchronous=FULL.
std::unique_ptr<db::Db> OpenCapturesDb(const std::filesystem::path& file);

}  // namespace anju::server::storage
