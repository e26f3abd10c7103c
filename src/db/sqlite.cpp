// The SQLite backend of db.h: one writer connection under a mutex and optional reader
// connections, WAL, synchronous=FULL, numbered migrations recorded in schema_version.
#include <sqlite3.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "core/clock.h"
#include "core/error.h"
#include "db/db.h"

namespace anju::db {

namespace {

namespace fs = std::filesystem;

[[noreturn]] void Throw(const std::string& name, sqlite3* db, int rc, const std::string& what) {
  const std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const std::string msg = name + " database: " + what + ": " + detail;
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      throw Error(ErrorCode::kInvalidArgument, msg, "constraint");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      throw Error(ErrorCode::kCorrupt, "数据库损坏 / damaged " + msg);
    case SQLITE_FULL:
      throw Error(ErrorCode::kStorageFull, "磁盘已满 / disk full: " + msg);
    case SQLITE_IOERR:
      if (db && (sqlite3_system_errno(db) == ENOSPC || sqlite3_system_errno(db) == EDQUOT))
        throw Error(ErrorCode::kStorageFull, "磁盘已满 / disk full: " + msg);
      throw Error(ErrorCode::kIo, msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      throw Error(ErrorCode::kUnavailable, msg);
    default:
      throw Error(ErrorCode::kIo, msg);
  }
}

class SqliteStmt final : public StmtBackend {
 public:
  SqliteStmt(const std::string& name, sqlite3* db, std::string_view sql) : name_(name), db_(db) {
    Check(sqlite3_prepare_v2(db, sql.data(), int(sql.size()), &s_, nullptr), "prepare");
  }
  ~SqliteStmt() override { sqlite3_finalize(s_); }

  void BindInt(int i, int64_t v) override { Check(sqlite3_bind_int64(s_, i, v), "bind"); }
  void BindDouble(int i, double v) override { Check(sqlite3_bind_double(s_, i, v), "bind"); }
  void BindText(int i, std::string_view v) override {
    Check(sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT), "bind");
  }
  void BindBlob(int i, std::span<const uint8_t> v) override {
    // A zero-length blob, never NULL: sqlite3_bind_blob with a null pointer binds NULL.
    static const uint8_t kEmpty = 0;
    Check(sqlite3_bind_blob(s_, i, v.empty() ? &kEmpty : v.data(), int(v.size()),
                            SQLITE_TRANSIENT),
          "bind");
  }
  void BindNull(int i) override { Check(sqlite3_bind_null(s_, i), "bind"); }
  bool Step() override {
    const int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    Throw(name_, db_, rc, "step");
  }
  void Reset() override {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  bool IsNull(int col) const override { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
  int64_t Int(int col) const override { return sqlite3_column_int64(s_, col); }
  double Double(int col) const override { return sqlite3_column_double(s_, col); }
  std::string Text(int col) const override {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, size_t(sqlite3_column_bytes(s_, col))) : std::string();
  }
  std::vector<uint8_t> Blob(int col) const override {
    auto p = static_cast<const uint8_t*>(sqlite3_column_blob(s_, col));
    return p ? std::vector<uint8_t>(p, p + sqlite3_column_bytes(s_, col))
             : std::vector<uint8_t>();
  }

 private:
  void Check(int rc, const char* what) {
    if (rc != SQLITE_OK) Throw(name_, db_, rc, what);
  }
  const std::string& name_;
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

class SqliteConn final : public ConnBackend {
 public:
  SqliteConn(const std::string& name, const fs::path& file, bool read_only, int busy_timeout_ms)
      : name_(name) {
    const int flags = (read_only ? SQLITE_OPEN_READONLY
                                 : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                      SQLITE_OPEN_NOMUTEX;
    const int rc = sqlite3_open_v2(file.c_str(), &db_, flags, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_close(db_);
      db_ = nullptr;
      Throw(name_, nullptr, rc, "open " + file.string());
    }
    sqlite3_extended_result_codes(db_, 1);
    sqlite3_busy_timeout(db_, busy_timeout_ms);
  }
  ~SqliteConn() override { sqlite3_close(db_); }

  Dialect dialect() const override { return Dialect::kSqlite; }
  std::unique_ptr<StmtBackend> Prepare(std::string_view sql) override {
    return std::make_unique<SqliteStmt>(name_, db_, sql);
  }
  void Exec(std::string_view sql) override {
    char* err = nullptr;
    const std::string text(sql);
    const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      const std::string msg = err ? err : "";
      sqlite3_free(err);
      Throw(name_, db_, rc, text.substr(0, 60) + (msg.empty() ? "" : ": " + msg));
    }
  }
  int64_t LastInsertId() override { return sqlite3_last_insert_rowid(db_); }
  int64_t Changes() override { return sqlite3_changes(db_); }
  void Begin() override { Exec("BEGIN IMMEDIATE"); }
  void Commit() override { Exec("COMMIT"); }
  void Rollback() noexcept override {
    if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  void* native() override { return db_; }
  sqlite3* raw() { return db_; }

 private:
  const std::string& name_;
  sqlite3* db_ = nullptr;
};

class SqliteDb final : public Db {
 public:
  SqliteDb(const fs::path& file, const Migrations& migrations, const SqliteOptions& o)
      : Db(o.name), file_(file) {
    if (o.read_only) {
      std::error_code ec;
      if (!fs::exists(file, ec))
        throw Error(ErrorCode::kNotFound, "没有数据库 / no " + name() + " database " + file.string());
      writer_ = std::make_unique<SqliteConn>(name(), file, true, o.busy_timeout_ms);
      Conn c(writer_.get(), nullptr);
      try {
        Stmt v(c, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
        v.Step();
        version_ = int(v.Int(0));
      } catch (const Error&) {
        version_ = 0;  // a file from before schema_version
      }
      return;
    }
    writer_ = std::make_unique<SqliteConn>(name(), file, false, o.busy_timeout_ms);
    {
      // auto_vacuum only takes effect on a new, empty file.
      if (o.incremental_vacuum) writer_->Exec("PRAGMA auto_vacuum=INCREMENTAL");
      auto s = writer_->Prepare("PRAGMA journal_mode=WAL");
      s->Step();
    }
    writer_->Exec("PRAGMA synchronous=FULL");
    if (o.foreign_keys) writer_->Exec("PRAGMA foreign_keys=ON");
    Migrate(migrations.sqlite);
    for (int i = 0; i < o.readers; ++i) {
      auto r = std::make_unique<SqliteConn>(name(), file, true, o.busy_timeout_ms);
      free_readers_.push_back(r.get());
      readers_.push_back(std::move(r));
    }
  }

  Dialect dialect() const override { return Dialect::kSqlite; }

  Conn Acquire() override {
    writer_mu_.lock();
    return Conn(writer_.get(), [this] { writer_mu_.unlock(); }, this);
  }

  Conn AcquireReader() override {
    if (readers_.empty()) return Acquire();
    std::unique_lock lock(readers_mu_);
    readers_cv_.wait(lock, [&] { return !free_readers_.empty(); });
    SqliteConn* r = free_readers_.front();
    free_readers_.pop_front();
    return Conn(
        r,
        [this, r] {
          {
            std::lock_guard l(readers_mu_);
            free_readers_.push_back(r);
          }
          readers_cv_.notify_one();
        },
        this);
  }

  int schema_version() const override { return version_; }
  std::filesystem::path file() const override { return file_; }

  void CopyTo(const fs::path& out) override {
    sqlite3* dst = nullptr;
    int rc = sqlite3_open_v2(out.c_str(), &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                             nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_close(dst);
      Throw(name(), nullptr, rc, "open copy " + out.string());
    }
    // Read through a reader when there is one, so the copy does not hold the writer.
    Conn c = AcquireReader();
    sqlite3* src = static_cast<sqlite3*>(c.backend().native());
    sqlite3_backup* b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
      const std::string msg = sqlite3_errmsg(dst);
      sqlite3_close(dst);
      throw Error(ErrorCode::kIo, name() + " database: backup: " + msg);
    }
    // A writer's checkpoint can hold the file for a moment: wait for it (about 10 s) rather
    // than fail a backup.
    for (int attempt = 0; attempt < 200; ++attempt) {
      rc = sqlite3_backup_step(b, -1);
      if (rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
      sqlite3_close(dst);
      Throw(name(), nullptr, rc, "backup to " + out.string());
    }
    rc = sqlite3_close(dst);
    if (rc != SQLITE_OK) Throw(name(), nullptr, rc, "close copy " + out.string());
  }

  int64_t SizeBytes() const override {
    std::error_code ec;
    int64_t n = 0;
    for (const char* suffix : {"", "-wal"}) {
      const auto s = fs::file_size(file_.string() + suffix, ec);
      if (!ec) n += int64_t(s);
    }
    return n;
  }

  void Reclaim() override {
    Conn c = Acquire();
    c.Exec("PRAGMA incremental_vacuum");
    c.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  }

 private:
  void Migrate(const std::vector<std::string>& migrations) {
    Conn c(writer_.get(), nullptr);
    c.Exec(
        "CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL, applied_ms "
        "INTEGER)");
    {
      Stmt s(c, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
      s.Step();
      version_ = int(s.Int(0));
    }
    if (version_ == 0) {
      // Written by an anju that kept the version in user_version: adopt it.
      Stmt s(c, "PRAGMA user_version");
      s.Step();
      const int legacy = int(s.Int(0));
      if (legacy > 0) {
        Stmt i(c, "INSERT INTO schema_version(version, applied_ms) VALUES(?, ?)");
        i.Bind(1, int64_t(legacy)).Bind(2, NowMs()).Run();
        version_ = legacy;
      }
    }
    if (version_ > int(migrations.size()))
      throw Error(ErrorCode::kCorrupt, name() + " database " + file_.string() +
                                           " has schema version " + std::to_string(version_) +
                                           ", newer than this program (" +
                                           std::to_string(migrations.size()) + ")");
    for (size_t v = size_t(version_); v < migrations.size(); ++v) {
      Transaction tx(c);
      c.Exec(migrations[v]);
      Stmt s(c, "INSERT INTO schema_version(version, applied_ms) VALUES(?, ?)");
      s.Bind(1, int64_t(v + 1)).Bind(2, NowMs()).Run();
      tx.Commit();
      version_ = int(v + 1);
    }
  }

  fs::path file_;
  std::unique_ptr<SqliteConn> writer_;
  std::mutex writer_mu_;
  std::vector<std::unique_ptr<SqliteConn>> readers_;
  std::deque<SqliteConn*> free_readers_;
  std::mutex readers_mu_;
  std::condition_variable readers_cv_;
  int version_ = 0;
};

}  // namespace

std::unique_ptr<Db> OpenSqlite(const fs::path& file, const Migrations& migrations,
                               SqliteOptions options) {
  return std::make_unique<SqliteDb>(file, migrations, options);
}

}  // namespace anju::db
