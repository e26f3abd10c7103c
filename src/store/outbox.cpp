#include "store/outbox.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_io.h"
#include "core/uuid.h"
#include "store/sqlite_stmt.h"

namespace anju::store {
namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

namespace {

constexpr int32_t kApplicationId = 0x414E4A4F;  // "ANJO"
constexpr int kFormatVersion = 1;               // PRAGMA user_version

[[noreturn]] void Fail(sqlite3* db, int rc, const std::string& what) {
  ThrowSqliteError(db, rc, what, "outbox database",
                   "待上传记录库已损坏 / outbox database is damaged or not an outbox",
                   "磁盘已满 / disk full writing the outbox");
}

// Statements of this database report failures through Fail() above.
class Stmt : public SqliteStmt {
 public:
  Stmt(sqlite3* db, const char* sql) : SqliteStmt(db, sql, Fail) {}
};

bool IsValidKind(std::string_view kind) {
  if (kind.empty() || kind.size() > 32) return false;
  for (char c : kind)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

int64_t ToMs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

Clock::time_point FromMs(int64_t ms) {
  return Clock::time_point(
      std::chrono::duration_cast<Clock::duration>(std::chrono::milliseconds(ms)));
}

}  // namespace

std::string NewOutboxId() {
  return NewUuid();  // core/uuid.h: one generator for every id
}

std::unique_ptr<Outbox> Outbox::Open(const fs::path& file, OutboxOptions options) {
  if (options.quota_bytes <= 0 || !(options.high_water > 0 && options.high_water <= 1) ||
      !(options.low_water >= 0 && options.low_water <= options.high_water))
    throw Error(ErrorCode::kInvalidArgument,
                "outbox quota must be positive and 0 <= low_water <= high_water <= 1");
  if (options.record_reserve_bytes < 0) options.record_reserve_bytes = options.quota_bytes / 20;
  const fs::path dir = file.has_parent_path() ? file.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(ErrorCode::kIo, "outbox directory does not exist: " + dir.string());
  if (fs::exists(file, ec) && !fs::is_regular_file(file, ec))
    throw Error(ErrorCode::kIo, "outbox path is not a regular file: " + file.string());

  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(file.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    throw Error(ErrorCode::kIo, "cannot open outbox " + file.string() + ": " + msg);
  }
  std::unique_ptr<Outbox> box(new Outbox(db, file, options));
  box->Load();
  SyncDir(dir);
  return box;
}

Outbox::Outbox(sqlite3* db, fs::path file, OutboxOptions options)
    : db_(db), file_(std::move(file)), options_(options) {}

Outbox::~Outbox() {
  sqlite3_close(db_);
}

void Outbox::Exec(const char* sql) const {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    Fail(nullptr, rc, std::string(sql).substr(0, 40) + ": " + msg);
  }
}

void Outbox::Load() {
  sqlite3_busy_timeout(db_, 5000);
  // Reading the header first: a file that is not SQLite fails here (kCorrupt).
  int64_t app_id = 0, tables = 0;
  {
    Stmt s(db_, "PRAGMA application_id");
    if (s.Step()) app_id = s.Int(0);
  }
  {
    Stmt s(db_, "SELECT count(*) FROM sqlite_master");
    if (s.Step()) tables = s.Int(0);
  }
  const bool fresh = app_id == 0 && tables == 0;
  if (!fresh && app_id != kApplicationId)
    throw Error(ErrorCode::kCorrupt,
                file_.string() + " 不是待上传记录库 / is not an anju outbox database");
  if (fresh) Exec("PRAGMA auto_vacuum=NONE");
  {
    Stmt s(db_, "PRAGMA journal_mode=WAL");
    if (!s.Step() || s.Text(0) != "wal")
      throw Error(ErrorCode::kIo, "outbox: cannot switch " + file_.string() + " to WAL mode");
  }
  Exec("PRAGMA synchronous=FULL");
  if (!fresh) {
    Stmt s(db_, "PRAGMA quick_check");
    if (!s.Step() || s.Text(0) != "ok")
      throw Error(ErrorCode::kCorrupt, "待上传记录库已损坏 / outbox database " + file_.string() +
                                           " failed its integrity check");
  }
  if (fresh) {
    Exec("BEGIN IMMEDIATE");
    try {
      Exec(
          "CREATE TABLE IF NOT EXISTS items("
          " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
          " id TEXT NOT NULL UNIQUE,"
          " kind TEXT NOT NULL,"
          " created_ms INTEGER NOT NULL,"
          " payload TEXT NOT NULL,"
          " attachment BLOB,"
          " attachment_dropped INTEGER NOT NULL DEFAULT 0,"
          " bytes INTEGER NOT NULL);"
          "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);");
      Exec(("PRAGMA application_id=" + std::to_string(kApplicationId) +
            "; PRAGMA user_version=" + std::to_string(kFormatVersion))
               .c_str());
      Exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  } else {
    Stmt s(db_, "PRAGMA user_version");
    if (!s.Step() || s.Int(0) != kFormatVersion)
      throw Error(ErrorCode::kCorrupt, "unsupported outbox format in " + file_.string());
  }
  {
    Stmt s(db_, "SELECT count(*), COALESCE(sum(bytes), 0) FROM items");
    s.Step();
    count_ = s.Int(0);
    bytes_ = s.Int(1);
  }
  {
    Stmt s(db_, "SELECT key, value FROM meta");
    while (s.Step()) {
      const std::string key = s.Text(0);
      if (key == "near_full") near_full_ = s.Int(1) != 0;
      if (key == "full") full_ = s.Int(1) != 0;
      if (key == "near_full_alarms") near_full_alarms_ = s.Int(1);
      if (key == "attachments_dropped") attachments_dropped_ = s.Int(1);
    }
  }
  // The quota may have changed since the flags were saved.
  if (double(bytes_) < options_.low_water * double(options_.quota_bytes)) near_full_ = false;
  if (double(bytes_) < options_.high_water * double(options_.quota_bytes)) full_ = false;
}

void Outbox::SaveFlags() {
  Stmt s(db_, "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)");
  const std::pair<const char*, int64_t> rows[] = {{"near_full", near_full_ ? 1 : 0},
                                                  {"full", full_ ? 1 : 0},
                                                  {"near_full_alarms", near_full_alarms_},
                                                  {"attachments_dropped", attachments_dropped_}};
  for (const auto& [k, v] : rows) {
    s.Reset().Bind(1, std::string_view(k)).Bind(2, v);
    s.Step();
  }
}

int64_t Outbox::Insert(const std::string& id, std::string_view kind, std::string_view json,
                       std::span<const uint8_t> attachment, bool dropped, int64_t created_ms,
                       int64_t bytes) {
  Stmt s(db_,
         "INSERT INTO items(id, kind, created_ms, payload, attachment, attachment_dropped, bytes)"
         " VALUES (?, ?, ?, ?, ?, ?, ?)");
  s.Bind(1, std::string_view(id)).Bind(2, kind).Bind(3, created_ms).Bind(4, json);
  s.BindBlobOrNull(5, attachment).Bind(6, int64_t{dropped ? 1 : 0}).Bind(7, bytes);
  s.Step();
  ++count_;
  bytes_ += bytes;
  return sqlite3_last_insert_rowid(db_);
}

void Outbox::AppendAlarmLocked(const char* type, int64_t total_after) {
  const bool near = std::string_view(type) == "outbox_near_full";
  const int64_t now_ms = ToMs(Clock::now());
  // The device protocol's alarm record (docs/device-protocol.md): the server files any
  // other shape in its quarantine, where no one on duty would see it.
  nlohmann::json j = {
      {"alarm_type", type},
      {"severity", near ? "minor" : "major"},
      {"time_ms", now_ms},
      {"bytes", total_after},
      {"quota_bytes", options_.quota_bytes},
      {"count", count_},
      {"description_zh", near ? "待上传记录存储即将写满，请检查网络与服务器连接"
                              : "待上传记录存储已满，新记录的抓拍图片将不再保存"},
      {"description_en", near ? "outbox storage nearly full: check the network and server"
                              : "outbox storage full: snapshots of new records are dropped"},
  };
  const std::string json = j.dump();
  const std::string id = NewOutboxId();
  const std::string_view kind = "alarm";
  const int64_t bytes = kRowOverhead + int64_t(kind.size() + id.size() + json.size());
  Insert(id, kind, json, {}, false, now_ms, bytes);
}

std::string Outbox::Append(std::string_view kind, std::string_view json,
                           std::span<const uint8_t> attachment, Clock::time_point created) {
  if (!IsValidKind(kind))
    throw Error(ErrorCode::kInvalidArgument,
                "outbox kind must be 1-32 characters of [a-z0-9_]: '" + std::string(kind) + "'");
  if (!nlohmann::json::accept(json))
    throw Error(ErrorCode::kInvalidArgument, "outbox payload is not valid JSON");
  if (created == Clock::time_point{}) created = Clock::now();
  const std::string id = NewOutboxId();
  const int64_t record = kRowOverhead + int64_t(kind.size() + id.size() + json.size());
  const int64_t att = int64_t(attachment.size());
  const double quota = double(options_.quota_bytes);

  std::lock_guard lock(mutex_);
  // In-memory state to restore if the transaction does not commit.
  const int64_t count0 = count_, bytes0 = bytes_, alarms0 = near_full_alarms_,
                dropped0 = attachments_dropped_;
  const bool near0 = near_full_, full0 = full_;
  Exec("BEGIN IMMEDIATE");
  try {
    const bool would_drop = att > 0 && double(bytes_ + record + att) > quota;
    // The alarm comes first, before anything is dropped.
    if (!near_full_ &&
        (double(bytes_ + record + att) >= options_.high_water * quota || would_drop)) {
      near_full_ = true;
      ++near_full_alarms_;
      AppendAlarmLocked("outbox_near_full", bytes_ + record + att);
    }
    bool dropped = false;
    if (att > 0 && double(bytes_ + record + att) > quota) {
      dropped = true;
      ++attachments_dropped_;
      if (!full_) {
        full_ = true;
        AppendAlarmLocked("outbox_full", bytes_ + record);
      }
    }
    if (bytes_ + record > options_.quota_bytes + options_.record_reserve_bytes)
      throw Error(ErrorCode::kUnavailable,
                  "待上传记录存储已满 / outbox full: " + std::to_string(bytes0) + " of " +
                      std::to_string(options_.quota_bytes) + " bytes used (reserve " +
                      std::to_string(options_.record_reserve_bytes) + "), record of " +
                      std::to_string(record) + " bytes refused");
    Insert(id, kind, json, dropped ? std::span<const uint8_t>{} : attachment, dropped,
           ToMs(created), record + (dropped ? 0 : att));
    if (near_full_ != near0 || full_ != full0 || attachments_dropped_ != dropped0) SaveFlags();
    Exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    count_ = count0, bytes_ = bytes0, near_full_alarms_ = alarms0;
    attachments_dropped_ = dropped0, near_full_ = near0, full_ = full0;
    throw;
  }
  return id;
}

void Outbox::Restore(const OutboxItem& item) {
  if (!IsValidKind(item.kind) || !nlohmann::json::accept(item.payload))
    throw Error(ErrorCode::kInvalidArgument, "outbox item to restore has a bad kind or payload");
  std::lock_guard lock(mutex_);
  {
    Stmt s(db_, "SELECT 1 FROM items WHERE id = ?");
    s.Bind(1, std::string_view(item.id));
    if (s.Step()) return;
  }
  const int64_t bytes = kRowOverhead +
                        int64_t(item.kind.size() + item.id.size() + item.payload.size()) +
                        int64_t(item.attachment.size());
  const int64_t count0 = count_, bytes0 = bytes_;
  try {
    Insert(item.id, item.kind, item.payload, item.attachment, item.attachment_dropped,
           ToMs(item.created), bytes);
  } catch (...) {
    count_ = count0, bytes_ = bytes0;
    throw;
  }
}

std::vector<OutboxItem> Outbox::Peek(size_t max_items) const {
  std::lock_guard lock(mutex_);
  std::vector<OutboxItem> out;
  if (max_items == 0) return out;
  Stmt s(db_,
         "SELECT seq, id, kind, created_ms, payload, attachment, attachment_dropped, bytes"
         " FROM items ORDER BY seq LIMIT ?");
  s.Bind(1, int64_t(std::min<size_t>(max_items, size_t(INT64_MAX))));
  while (s.Step()) {
    OutboxItem item;
    item.seq = s.Int(0);
    item.id = s.Text(1);
    item.kind = s.Text(2);
    item.created = FromMs(s.Int(3));
    item.payload = s.Text(4);
    item.attachment = s.Blob(5);
    item.attachment_dropped = s.Int(6) != 0;
    item.bytes = s.Int(7);
    out.push_back(std::move(item));
  }
  return out;
}

size_t Outbox::Ack(std::span<const std::string> ids) {
  if (ids.empty()) return 0;
  std::lock_guard lock(mutex_);
  const int64_t count0 = count_, bytes0 = bytes_;
  const bool near0 = near_full_, full0 = full_;
  size_t removed = 0;
  Exec("BEGIN IMMEDIATE");
  try {
    Stmt del(db_, "DELETE FROM items WHERE id = ? RETURNING bytes");
    for (const auto& id : ids) {
      del.Reset().Bind(1, std::string_view(id));
      while (del.Step()) {
        bytes_ -= del.Int(0);
        --count_;
        ++removed;
      }
    }
    const double quota = double(options_.quota_bytes);
    if (double(bytes_) < options_.low_water * quota) near_full_ = false;
    if (double(bytes_) < options_.high_water * quota) full_ = false;
    if (near_full_ != near0 || full_ != full0) SaveFlags();
    Exec("COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    count_ = count0, bytes_ = bytes0, near_full_ = near0, full_ = full0;
    throw;
  }
  return removed;
}

OutboxStats Outbox::Stats() const {
  std::lock_guard lock(mutex_);
  OutboxStats st;
  st.count = count_;
  st.bytes = bytes_;
  st.quota_bytes = options_.quota_bytes;
  st.near_full = near_full_;
  st.full = full_;
  st.near_full_alarms = near_full_alarms_;
  st.attachments_dropped = attachments_dropped_;
  Stmt s(db_, "SELECT created_ms FROM items ORDER BY seq LIMIT 1");
  if (s.Step()) st.oldest = FromMs(s.Int(0));
  return st;
}

}  // namespace anju::store
