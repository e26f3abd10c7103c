// The event store's snapshot files on disk (docs/events-and-retention.md): written whole,
// made durable before the rows naming them commit, read back whole. Failures are
// anju::Error: kIo, kUnavailable when the disk is full, kNotFound for a missing file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "crypto/bytes.h"

namespace anju::server::snapshot_files {

// fsync of a directory (its entries reach the disk).
void SyncDir(const std::filesystem::path& dir);
// Writes the whole buffer to a new (or truncated) file of mode 0600; fsyncs when asked.
void WriteWholeFile(const std::filesystem::path& path, crypto::ByteView data, bool sync);
// fsyncs every path (files and directories) at once, one thread each (up to 32).
void SyncInParallel(const std::vector<std::filesystem::path>& paths);
// One syncfs() of the file system holding DIR.
void SyncFileSystem(const std::filesystem::path& dir);
std::vector<uint8_t> ReadWholeFile(const std::filesystem::path& path);

}  // namespace anju::server::snapshot_files
