// The sealed blobs (photos/, snapshots/, captures/) in PostgreSQL: the schema "blobs" of
// the installation's database, beside archive, events and captures (R3.3.2.5: storage as
// large and as available as the database cluster itself; docs/distributed.md, "Where the
// blobs go"). The bytes are sealed by anju before they get here, as with the files.
//
// One table, blob(key, month, size, stored_ms, bytes), partitioned by RANGE (month):
//   - month is a function of the key alone: the first day of the month of its YYYY/MM/DD
//     path component (snapshots/2026/12/06/…, captures/2026/12/06/…), or 0001-01-01 for
//     keys without a date (photos/<code>/…, kept until their person goes, not by month),
//     which fall in the partition blob_undated. So the primary key (key, month) — PostgreSQL
//     wants the partition key in every unique constraint — is unique per key, and a lookup
//     by key names its partition: one index probe.
//   - one partition per month in use (blob_y2026m12), created before the first put into it
//     and one month ahead, under an advisory lock (several servers share the database);
//     a DEFAULT partition catches anything else (it stays empty).
//   - keys are text COLLATE "C": List(prefix) is a range scan in byte order, whatever the
//     database's collation, and needs no LIKE (no escaping of % and _).
// Every PutMany is one transaction (all or nothing); durable when it returns (the
// server's synchronous_commit).
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "db/db.h"
#include "server/runtime/blob_store.h"

namespace anju::server::storage {

// The schema's migrations (PostgreSQL only; the blobs never go into SQLite).
const db::Migrations& BlobsMigrations();

class PostgresBlobStore final : public runtime::BlobStore {
 public:
  // DB: a PostgreSQL database migrated with BlobsMigrations(). Creates the partitions of
  // this month and the next.
  explicit PostgresBlobStore(std::unique_ptr<db::Db> db);

  void PutMany(const std::vector<std::pair<std::string, std::span<const uint8_t>>>& blobs) override;
  std::vector<uint8_t> Get(const std::string& key) const override;
  bool Exists(const std::string& key) const override;
  std::optional<int64_t> Size(const std::string& key) const override;
  bool Remove(const std::string& key) override;
  // Keys in the directory PREFIX ("snapshots/2026/12/" or "snapshots/2026/12": the keys that
  // begin with "snapshots/2026/12/"; "" = every key), in byte order, as FileBlobStore.
  void List(const std::string& prefix,
            const std::function<bool(const std::string& key)>& fn) const override;

  // The partition holding KEY's month ("2026-12-01"; "0001-01-01" for undated keys).
  static std::string MonthOf(const std::string& key);
  // The monthly partitions that exist, oldest first ("blob_y2026m12", …).
  std::vector<std::string> MonthPartitions() const;
  // For backups (a pg_dump of the schema) and tests.
  db::Db& database() { return *db_; }

 private:
  // Creates the partition of MONTH ("YYYY-MM-01") and the next one unless known to exist.
  void EnsureMonth(const std::string& month);

  std::unique_ptr<db::Db> db_;
  std::mutex mu_;
  std::set<std::string> months_;  // partitions known to exist
};

// Opens the schema "blobs" of the PostgreSQL database at URL (creating and migrating it).
// Error(kInvalidArgument) unless URL is a postgresql:// URL; Error(kUnavailable) when the
// server cannot be reached.
std::unique_ptr<PostgresBlobStore> OpenPostgresBlobStore(const std::string& url);

}  // namespace anju::server::storage
