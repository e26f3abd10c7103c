// The one database seam of anju: a Db hands out connections (Conn), on which statements
// (Stmt) and transactions (Transaction) run. The embedded backend is SQLite (one writer
// connection under a mutex, optional reader connections, WAL); the PostgreSQL backend
// (postgres.h) serves the same SQL from a shared server. SQL is written once, with `?` /
// `?N` placeholders, in the subset both backends speak (docs/storage.md).
//
//   auto c = db.Acquire();            // a leased connection (SQLite: holds the writer lock)
//   db::Transaction tx(c);            // BEGIN IMMEDIATE … COMMIT; rolled back unless committed
//   db::Stmt s(c, "INSERT INTO t(a) VALUES(?)");
//   s.Bind(1, 42).Run();
//   c.AfterCommit([] { … });          // runs once the transaction is durable
//   tx.Commit();
//
// Errors: anju::Error with the database's name: kStorageFull (disk full), kCorrupt (damaged
// file), kConflict (a constraint refused the change), kUnavailable (busy, peer gone), kIo.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace anju::db {

enum class Dialect { kSqlite, kPostgres };

// ---- backend interfaces (implemented by sqlite.cpp and other backends) -----------------

class StmtBackend {
 public:
  virtual ~StmtBackend() = default;
  virtual void BindInt(int i, int64_t v) = 0;
  virtual void BindDouble(int i, double v) = 0;
  virtual void BindText(int i, std::string_view v) = 0;
  virtual void BindBlob(int i, std::span<const uint8_t> v) = 0;
  virtual void BindNull(int i) = 0;
  virtual bool Step() = 0;
  virtual void Reset() = 0;  // also clears bindings
  virtual bool IsNull(int col) const = 0;
  virtual int64_t Int(int col) const = 0;
  virtual double Double(int col) const = 0;
  virtual std::string Text(int col) const = 0;
  virtual std::vector<uint8_t> Blob(int col) const = 0;
};

class ConnBackend {
 public:
  virtual ~ConnBackend() = default;
  virtual Dialect dialect() const = 0;
  virtual std::unique_ptr<StmtBackend> Prepare(std::string_view sql) = 0;
  // Runs SQL without parameters (may hold several statements).
  virtual void Exec(std::string_view sql) = 0;
  virtual int64_t LastInsertId() = 0;
  virtual int64_t Changes() = 0;
  virtual void Begin() = 0;  // a write transaction (SQLite: BEGIN IMMEDIATE)
  virtual void Commit() = 0;
  virtual void Rollback() noexcept = 0;
  // The backend's native handle (sqlite3*), for backend-specific operations in src/db.
  virtual void* native() = 0;
};

// ---- connections -----------------------------------------------------------------------

// A leased connection. Move-only; returns the connection to its Db when destroyed.
class Db;

class Conn {
 public:
  Conn(ConnBackend* backend, std::function<void()> release, Db* owner = nullptr);
  Conn(Conn&& o) noexcept;
  Conn& operator=(Conn&&) = delete;
  Conn(const Conn&) = delete;
  ~Conn();

  Dialect dialect() const { return b_->dialect(); }
  void Exec(std::string_view sql);
  int64_t LastInsertId() { return b_->LastInsertId(); }
  int64_t Changes() { return b_->Changes(); }  // rows changed by the last statement
  bool in_transaction() const { return depth_ > 0; }
  // Runs FN once the current transaction has committed (at once outside a transaction);
  // dropped when it rolls back. FN must not throw.
  void AfterCommit(std::function<void()> fn);
  // Runs FN just before the current transaction commits; when FN throws, the transaction
  // rolls back and Commit() throws. Outside a transaction FN runs at once.
  void BeforeCommit(std::function<void()> fn);

  ConnBackend& backend() { return *b_; }
  // The database this connection belongs to (null for a bare connection).
  Db* owner() const { return owner_; }

 private:
  friend class Transaction;
  ConnBackend* b_;
  std::function<void()> release_;
  Db* owner_ = nullptr;
  int depth_ = 0;
  std::vector<std::function<void()>> before_commit_;
  std::vector<std::function<void()>> after_commit_;
};

// A prepared statement with chainable binds (1-based) and typed column reads (0-based).
class Stmt {
 public:
  Stmt(Conn& c, std::string_view sql);
  Stmt(Stmt&&) noexcept = default;
  ~Stmt();

  Stmt& Bind(int i, int64_t v) { return b_->BindInt(i, v), *this; }
  Stmt& Bind(int i, int v) { return Bind(i, int64_t(v)); }
  Stmt& Bind(int i, bool v) { return Bind(i, int64_t(v ? 1 : 0)); }
  Stmt& Bind(int i, double v) { return b_->BindDouble(i, v), *this; }
  Stmt& Bind(int i, std::string_view v) { return b_->BindText(i, v), *this; }
  Stmt& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Stmt& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  Stmt& Bind(int i, std::span<const uint8_t> v) { return b_->BindBlob(i, v), *this; }
  Stmt& Bind(int i, const std::vector<uint8_t>& v) {
    return Bind(i, std::span<const uint8_t>(v));
  }
  Stmt& BindNull(int i) { return b_->BindNull(i), *this; }
  template <typename T>
  Stmt& Bind(int i, const std::optional<T>& v) {
    return v ? Bind(i, *v) : BindNull(i);
  }
  bool Step() { return b_->Step(); }  // true while rows come
  void Run();                          // to the end, for statements without rows
  Stmt& Reset() { return b_->Reset(), *this; }

  bool IsNull(int col) const { return b_->IsNull(col); }
  int64_t Int(int col) const { return b_->Int(col); }
  double Double(int col) const { return b_->Double(col); }
  std::string Text(int col) const { return b_->Text(col); }
  std::vector<uint8_t> Blob(int col) const { return b_->Blob(col); }
  std::optional<int64_t> OptInt(int col) const;
  std::optional<std::string> OptText(int col) const;

 private:
  std::unique_ptr<StmtBackend> b_;
};

// A write transaction on C. Inside another one it joins it (Commit does nothing; the
// outer one decides). Rolled back when destroyed without Commit().
class Transaction {
 public:
  explicit Transaction(Conn& c);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  void Commit();

 private:
  Conn& c_;
  bool outer_ = false;
  bool done_ = false;
};

// One read transaction on C: every statement inside sees the same committed state while
// writers go on (SQLite in WAL mode: a deferred BEGIN; PostgreSQL: REPEATABLE READ, READ
// ONLY). Ended when destroyed; it never writes.
class ReadSnapshot {
 public:
  explicit ReadSnapshot(Conn& c);
  ~ReadSnapshot();
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;

 private:
  Conn& c_;
};

// ---- databases -------------------------------------------------------------------------

// Schema migrations, numbered from 1 in order, one list per dialect (a backend takes its
// own). Applied versions are recorded in the table schema_version.
struct Migrations {
  std::vector<std::string> sqlite;
  std::vector<std::string> postgres;
};

class Db {
 public:
  virtual ~Db() = default;
  virtual Dialect dialect() const = 0;
  // The read-write connection (SQLite: the single writer; waits for it).
  virtual Conn Acquire() = 0;
  // A connection for reading; SQLite: a separate reader when the database has readers
  // (WAL: readers never wait for the writer), else the writer.
  virtual Conn AcquireReader() { return Acquire(); }
  virtual int schema_version() const = 0;
  // A consistent online copy of the whole database into FILE (backups).
  virtual void CopyTo(const std::filesystem::path& file) = 0;
  // Bytes the database takes on disk (with its journal).
  virtual int64_t SizeBytes() const = 0;
  // Gives free pages back to the file system where the backend can.
  virtual void Reclaim() {}
  // The database's file (empty for a backend that is not a file).
  virtual std::filesystem::path file() const { return {}; }
  const std::string& name() const { return name_; }

 protected:
  explicit Db(std::string name) : name_(std::move(name)) {}

 private:
  std::string name_;
};

struct SqliteOptions {
  std::string name = "database";  // in error messages ("archive", "events", …)
  bool foreign_keys = true;
  // Separate read-only connections for AcquireReader (WAL); 0 = reads use the writer.
  int readers = 0;
  // auto_vacuum=INCREMENTAL for a new file (retention gives space back, Reclaim()).
  bool incremental_vacuum = false;
  int busy_timeout_ms = 5000;
  // Opens an existing file read-only (no migrations, no WAL switch): for tools that read a
  // live database beside the server (audit verification, exports). Error(kNotFound) when
  // the file does not exist.
  bool read_only = false;
};

// Opens (creating) FILE with WAL and synchronous=FULL, then applies the migrations newer
// than its schema version, each in its own transaction. A file last written by an older
// anju that kept its version in PRAGMA user_version is adopted as that version.
std::unique_ptr<Db> OpenSqlite(const std::filesystem::path& file, const Migrations& migrations,
                               SqliteOptions options = {});

// Turns `?` and `?N` placeholders into `$N` (PostgreSQL), leaving string literals,
// quoted identifiers and comments alone.
std::string ToDollarParams(std::string_view sql);

}  // namespace anju::db
