// The terminal's durable outbox ("Local state and records"): a FIFO of records
// (access decisions, alarms, door events, ...) waiting to be uploaded to the server.
//
// Storage: one SQLite database in WAL mode with synchronous=FULL. Every Append is one
// transaction whose commit fsyncs the WAL before Append returns, so an item whose id
// Append returned survives kill -9 and power loss (given a disk that honours fsync).
// A snapshot (JPEG) travels in the same row as a BLOB, so record and attachment are
// committed, or lost, together; Ack deletes both in one transaction.
//
// Ids: a random 128-bit UUID (version 4) per item, generated once at Append and stored,
// so a resend after a crash or a lost response carries the same id and the receiver
// can discard the duplicate.
//
// Quota: items are accounted by their stored size (payload + attachment + a fixed
// per-row overhead). When an Append takes the total to the high-water mark (90% of the
// quota by default) the outbox first appends one `alarm` record of type
// `outbox_near_full` (once per crossing; re-armed when the total falls below the
// low-water mark). An attachment that would take the total past the quota is refused:
// the record is still stored, with `attachment_dropped` set (and an `outbox_full`
// alarm, once per crossing). Records without attachments may use a further reserve
// above the quota; past that Append throws Error(kUnavailable) — the outbox never
// deletes a stored item by itself, only Ack does.
//
// Errors: a file that is not an anju outbox, or is damaged, is refused with
// Error(kCorrupt); a path that cannot be opened or written with Error(kIo).
// Thread-safe: every call takes one mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace anju::store {

struct OutboxOptions {
  // Disk quota for the stored items, in bytes (default 2 GiB: 3 days of snapshots at
  // one 100 kB JPEG every 15 s is ~1.7 GB).
  int64_t quota_bytes = int64_t{2} << 30;
  // Fraction of the quota at which the `outbox_near_full` alarm is raised.
  double high_water = 0.9;
  // Fraction below which the alarm is re-armed (hysteresis).
  double low_water = 0.8;
  // Records without attachments may exceed the quota by this much (bytes; negative =
  // 5% of the quota) before Append refuses them.
  int64_t record_reserve_bytes = -1;
};

struct OutboxItem {
  int64_t seq = 0;   // position in the FIFO (increasing, never reused)
  std::string id;    // idempotent id, e.g. "3f2c9a4e-8d1b-4c7a-9e0f-1a2b3c4d5e6f"
  std::string kind;  // "access", "alarm", "door_event", ...
  std::chrono::system_clock::time_point created;
  std::string payload;              // JSON text
  std::vector<uint8_t> attachment;  // e.g. a JPEG snapshot; empty if none
  bool attachment_dropped = false;  // an attachment was offered but refused (quota)
  int64_t bytes = 0;                // accounted size
};

struct OutboxStats {
  int64_t count = 0;
  int64_t bytes = 0;  // accounted size of all stored items
  int64_t quota_bytes = 0;
  std::chrono::system_clock::time_point oldest{};  // epoch when empty
  bool near_full = false;                          // above the high-water mark (alarm raised)
  bool full = false;                               // attachments are being refused
  int64_t near_full_alarms = 0;                    // outbox_near_full alarms ever raised
  int64_t attachments_dropped = 0;                 // attachments ever refused
};

// What OpenOrSalvage did with a damaged outbox.
struct OutboxSalvage {
  bool happened = false;
  std::string reason;              // why the file was refused (the kCorrupt message)
  std::filesystem::path moved_to;  // the damaged file, kept beside it for analysis
  int64_t salvaged = 0;            // items copied into the new outbox, ids unchanged
  int64_t unreadable = 0;          // rows (or ranges) that could not be read
};

class Outbox {
 public:
  // Opens FILE, creating it (and nothing else: the directory must exist) if absent.
  static std::unique_ptr<Outbox> Open(const std::filesystem::path& file,
                                      OutboxOptions options = {});
  // Open, except that a damaged file (Error kCorrupt: a bad page, a truncated file, a
  // failed integrity check) does not stop the program that owns it: the file is moved
  // aside to FILE.damaged-<unix ms> (with its -wal and -shm), every item that can still be
  // read is copied into a new outbox at FILE with its id, kind, time, payload and
  // attachment (so the server drops what it already has), and REPORT says what happened.
  // The caller records that as an alarm. Other errors are thrown as by Open.
  static std::unique_ptr<Outbox> OpenOrSalvage(const std::filesystem::path& file,
                                               OutboxOptions options, OutboxSalvage* report);
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // Appends one item and returns its id once it is durable. KIND: 1–32 characters of
  // [a-z0-9_]; JSON: a valid JSON document; CREATED: epoch = now.
  // Throws Error(kInvalidArgument) for a bad kind or JSON, Error(kUnavailable) when even
  // the record reserve is exhausted, Error(kIo) when the disk refuses.
  std::string Append(std::string_view kind, std::string_view json,
                     std::span<const uint8_t> attachment = {},
                     std::chrono::system_clock::time_point created = {});

  // Up to MAX_ITEMS of the oldest items, oldest first (nothing is removed).
  std::vector<OutboxItem> Peek(size_t max_items) const;
  // Removes the items with these ids (and their attachments) for good; unknown ids
  // are ignored, so a repeated Ack is harmless. Returns how many were removed.
  size_t Ack(std::span<const std::string> ids);

  OutboxStats Stats() const;
  const std::filesystem::path& file() const { return file_; }

  // Stores ITEM as it is (id, kind, created, payload, attachment; seq is new), for
  // salvage. Does nothing when the id is already stored. Not subject to the quota.
  void Restore(const OutboxItem& item);

  // Accounted size of an item: payload + kind + id + attachment + this overhead.
  static constexpr int64_t kRowOverhead = 64;

 private:
  Outbox(sqlite3* db, std::filesystem::path file, OutboxOptions options);
  void Exec(const char* sql) const;
  void Load();
  int64_t Insert(const std::string& id, std::string_view kind, std::string_view json,
                 std::span<const uint8_t> attachment, bool dropped, int64_t created_ms,
                 int64_t bytes);
  void AppendAlarmLocked(const char* type, int64_t total_after);
  void SaveFlags();

  mutable std::mutex mutex_;
  sqlite3* db_ = nullptr;
  std::filesystem::path file_;
  OutboxOptions options_;
  int64_t count_ = 0;
  int64_t bytes_ = 0;
  bool near_full_ = false;
  bool full_ = false;
  int64_t near_full_alarms_ = 0;
  int64_t attachments_dropped_ = 0;
};

// A new random idempotent id (UUID version 4 text, from the kernel's CSPRNG).
std::string NewOutboxId();

}  // namespace anju::store
