// Schema migrations of archive.db, oldest first. Never edit a released migration: add a
// new one at the end (Database applies those newer than the stored version).
#pragma once

#include <string>
#include <vector>

namespace anju::server {

const std::vector<std::string>& ArchiveMigrations();

}  // namespace anju::server
