// Schema migrations of archive.db, oldest first. Never edit a released migration: add a
// new one at the end (db::Db applies those newer than the stored version).
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "db/db.h"

namespace anju::server {

const std::vector<std::string>& ArchiveMigrations();

// Opens (creating and migrating) the archive database FILE.
std::unique_ptr<db::Db> OpenArchiveDb(const std::filesystem::path& file);

}  // namespace anju::server
