// Durable file writes shared by every module: what a crash leaves behind is either the old
// file or the whole new one, and a rename is only reported done once its directory entry
// is on disk. Errors are reported, never ignored: Error(kUnavailable) when the disk is full
// (ENOSPC, EDQUOT), Error(kIo) otherwise.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace anju {

// fsync a directory so that entries created, renamed or removed in it are durable.
void SyncDir(const std::filesystem::path& dir);

// syncfs: everything written to the file system that holds DIR is durable (one journal
// commit for many files).
void SyncFileSystem(const std::filesystem::path& dir);

// fsync an open file descriptor; WHAT names it in the error.
void SyncFile(int fd, const std::filesystem::path& what);

// Writes DATA to PATH through a temporary file in the same directory: write, fsync,
// rename over PATH, fsync the directory. MODE applies to the new file (default 0600).
void WriteFileDurably(const std::filesystem::path& path, std::span<const uint8_t> data,
                      unsigned mode = 0600);
void WriteFileDurably(const std::filesystem::path& path, const std::string& data,
                      unsigned mode = 0600);

// The whole file. Error(kNotFound) when it does not exist, Error(kIo) otherwise.
std::vector<uint8_t> ReadFileBytes(const std::filesystem::path& path);
std::string ReadFileText(const std::filesystem::path& path);

// Whether ERRNO_VALUE means the disk (or the quota) is full.
bool IsDiskFull(int errno_value);

}  // namespace anju
