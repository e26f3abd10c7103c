// Online backup and restore of a server data directory (R3.3.2.5, R3.3.2.1):
// every SQLite database (*.db) through the SQLite online backup API — a consistent copy
// while the server keeps writing — and every other regular file (photos, snapshots, key
// files; the blob store's too when it lies elsewhere), into one archive that is
// SM4-encrypted and authenticated record by record.
//
// Archive format, version 1 (integers big-endian; docs/events-and-retention.md):
//
//   header, 64 bytes, plaintext but authenticated (it is part of every record's AAD):
//     0  8  magic "ANJUBAK\0"
//     8  2  version = 1
//    10  2  reserved (0)
//    12  8  key id: DataKey::id_bytes() of the backup key
//    20 16  archive id: random, so records cannot be spliced between archives
//    36  8  created_ms
//    44  4  data chunk size (bytes of file content per DATA record)
//    48 16  reserved (0)
//   then records until the INDEX record, then end of file:
//     u32 length, then crypto::Seal(key, plaintext, aad = header || u64 record number)
//     plaintext = u8 type || body
//       1 ENTRY  JSON {"path", "kind": "sqlite"|"file", "mode"}    starts a file
//       2 DATA   up to chunk-size bytes of the current file
//       3 END    JSON {"size", "sm3"}                              ends it
//       4 INDEX  JSON {"entries": [{"path","kind","mode","size","sm3"}], "records": n,
//                "bytes": total}                                   always last
//
// Record numbers in the AAD make dropped, repeated or reordered records fail to open;
// the INDEX record must come last and match what was read, so a truncated archive is
// refused even when it was cut at a record boundary.
//
// Errors: Error(kCrypto) for a wrong key (the message gives both key ids) or a record that
// fails authentication (tampered); Error(kCorrupt) for a file that is not an archive, is
// truncated or has trailing bytes; Error(kInvalidArgument) for an existing output file, an
// output inside the data directory, or a non-empty restore target; Error(kIo) otherwise.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "crypto/envelope.h"
#include "db/db.h"
#include "server/runtime/blob_store.h"

namespace anju::server {

struct BackupEntry {
  std::string path;      // relative to the data directory, '/'-separated
  std::string kind;      // "sqlite" (copied with the online backup API) or "file"
  uint32_t mode = 0600;  // permission bits, restored as they were
  int64_t size = 0;
  std::string sm3;  // hex SM3 of the content
};

struct BackupInfo {
  std::string archive_id;  // 32 hex digits
  std::string key_id;      // 16 hex digits
  int64_t created_ms = 0;
  std::vector<BackupEntry> entries;
  int64_t bytes = 0;          // plaintext bytes of all entries
  int64_t archive_bytes = 0;  // size of the archive file
  int64_t databases() const;
  int64_t files() const;
};
nlohmann::json ToJson(const BackupInfo& info);

// Writes DATA_DIR into OUT_FILE (via OUT_FILE.partial, fsynced, renamed). Databases are
// copied first, then the other files, so every file a copied row names is in the
// archive unless retention deleted it meanwhile. SQLite side files (-wal, -shm,
// -journal) are not copied (their content is in the online copy); symlinks are skipped.
// BLOBS: the server's blob store when it keeps the blobs outside DATA_DIR
// (ServerOptions::blobs_dir; null when they are in DATA_DIR): every blob goes into the
// archive as a file at its key (photos/..., snapshots/..., captures/...), so a restore
// puts them where a data directory without a blob directory keeps them.
// POSTGRES: the installation's databases when they are on PostgreSQL
// (ServerOptions::database): each goes in first as "postgres/<name>.dump" (kind "pgdump",
// pg_dump's custom format of its schema, one consistent snapshot); a restore writes the
// dump files, which db::RestorePostgresDump (pg_restore) loads into an empty database.
BackupInfo CreateBackup(const std::filesystem::path& data_dir,
                        const std::filesystem::path& out_file, const crypto::DataKey& backup_key,
                        const runtime::BlobStore* blobs = nullptr,
                        const std::vector<db::Db*>& postgres = {});

// Reads and authenticates the whole archive without writing anything.
BackupInfo VerifyBackup(const std::filesystem::path& in_file, const crypto::DataKey& backup_key);

// Restores IN_FILE into TARGET_DIR, which must be empty or absent. Everything is written
// to a staging directory inside it and moved into place only after the whole archive
// authenticated, so a bad archive leaves TARGET_DIR as it was.
BackupInfo RestoreBackup(const std::filesystem::path& in_file,
                         const std::filesystem::path& target_dir,
                         const crypto::DataKey& backup_key);

}  // namespace anju::server
