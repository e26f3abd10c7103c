#include "server/sqlite_db.h"

#include <cerrno>
#include <chrono>
#include <utility>

#include "core/error.h"

namespace anju::server {

namespace {

struct CommitRefusal {
  bool set = false;
  ErrorCode code = ErrorCode::kIo;
  std::string why;
};
thread_local CommitRefusal commit_refusal;

// SQLite reports a write the disk refused as SQLITE_FULL, or as SQLITE_IOERR with ENOSPC
// (or EDQUOT) underneath; both are a full disk (507), not a bad request.
bool DiskFull(sqlite3* db, int rc) {
  if ((rc & 0xff) == SQLITE_FULL) return true;
  if ((rc & 0xff) != SQLITE_IOERR || !db) return false;
  const int e = sqlite3_system_errno(db);
  return e == ENOSPC || e == EDQUOT;
}

}  // namespace

void RefuseCommit(ErrorCode code, std::string why) {
  commit_refusal = {true, code, std::move(why)};
}

void ThrowSqlite(sqlite3* db, int rc, const std::string& what) {
  if ((rc & 0xff) == SQLITE_CONSTRAINT && commit_refusal.set) {
    const CommitRefusal r = std::exchange(commit_refusal, {});
    throw Error(r.code, (r.code == ErrorCode::kStorageFull ? "磁盘已满 / disk full: " : "") +
                            std::string("archive database: ") + what + ": " + r.why);
  }
  const std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  const std::string msg = "archive database: " + what + ": " + detail;
  if (DiskFull(db, rc)) throw Error(ErrorCode::kStorageFull, "磁盘已满 / disk full: " + msg);
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      throw Error(ErrorCode::kInvalidArgument, msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      throw Error(ErrorCode::kCorrupt, msg);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      throw Error(ErrorCode::kUnavailable, msg);
    default:
      throw Error(ErrorCode::kIo, msg);
  }
}

Stmt::Stmt(sqlite3* db, std::string_view sql) : db_(db) {
  Check(sqlite3_prepare_v2(db, sql.data(), int(sql.size()), &s_, nullptr), "prepare");
}

Stmt::~Stmt() {
  sqlite3_finalize(s_);
}

void Stmt::Check(int rc, const char* what) {
  if (rc != SQLITE_OK) ThrowSqlite(db_, rc, what);
}

Stmt& Stmt::Bind(int i, int64_t v) {
  Check(sqlite3_bind_int64(s_, i, v), "bind");
  return *this;
}
Stmt& Stmt::Bind(int i, double v) {
  Check(sqlite3_bind_double(s_, i, v), "bind");
  return *this;
}
Stmt& Stmt::Bind(int i, std::string_view v) {
  Check(sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT), "bind");
  return *this;
}
Stmt& Stmt::Bind(int i, std::span<const uint8_t> v) {
  Check(sqlite3_bind_blob(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT), "bind");
  return *this;
}
Stmt& Stmt::BindNull(int i) {
  Check(sqlite3_bind_null(s_, i), "bind");
  return *this;
}

bool Stmt::Step() {
  commit_refusal = {};
  const int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  ThrowSqlite(db_, rc, "step");
}

void Stmt::Run() {
  while (Step()) {
  }
}

Stmt& Stmt::Reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
  return *this;
}

bool Stmt::IsNull(int col) const {
  return sqlite3_column_type(s_, col) == SQLITE_NULL;
}
int64_t Stmt::Int(int col) const {
  return sqlite3_column_int64(s_, col);
}
double Stmt::Double(int col) const {
  return sqlite3_column_double(s_, col);
}
std::string Stmt::Text(int col) const {
  auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
  return p ? std::string(p, size_t(sqlite3_column_bytes(s_, col))) : std::string();
}
std::vector<uint8_t> Stmt::Blob(int col) const {
  auto p = static_cast<const uint8_t*>(sqlite3_column_blob(s_, col));
  return p ? std::vector<uint8_t>(p, p + sqlite3_column_bytes(s_, col)) : std::vector<uint8_t>();
}
std::optional<int64_t> Stmt::OptInt(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Int(col);
}

Database::Database(const std::filesystem::path& file, const std::vector<std::string>& migrations)
    : file_(file) {
  const int rc =
      sqlite3_open_v2(file.c_str(), &db_,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_close(db_);
    db_ = nullptr;
    ThrowSqlite(nullptr, rc, "open " + file.string());
  }
  sqlite3_busy_timeout(db_, 5000);
  {
    Stmt s(db_, "PRAGMA journal_mode=WAL");
    s.Step();
  }
  Exec("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
  Exec("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL, applied_ms INTEGER)");
  {
    Stmt s(db_, "SELECT COALESCE(MAX(version), 0) FROM schema_version");
    s.Step();
    version_ = int(s.Int(0));
  }
  if (version_ > int(migrations.size()))
    throw Error(ErrorCode::kCorrupt, "archive database " + file.string() + " has schema version " +
                                         std::to_string(version_) + ", newer than this program (" +
                                         std::to_string(migrations.size()) + ")");
  for (size_t v = size_t(version_); v < migrations.size(); ++v) {
    Transaction tx(*this);
    Exec(migrations[v]);
    Stmt s(db_, "INSERT INTO schema_version(version, applied_ms) VALUES(?, ?)");
    s.Bind(1, int64_t(v + 1))
        .Bind(2, int64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count()))
        .Run();
    tx.Commit();
    version_ = int(v + 1);
  }
}

Database::~Database() {
  sqlite3_close(db_);
}

void Database::Exec(std::string_view sql) {
  char* err = nullptr;
  const std::string text(sql);
  commit_refusal = {};
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    const std::string msg = err ? err : "";
    sqlite3_free(err);
    ThrowSqlite(nullptr, DiskFull(db_, rc) ? SQLITE_FULL : rc, text.substr(0, 60) + ": " + msg);
  }
}

int64_t Database::LastInsertId() const {
  return sqlite3_last_insert_rowid(db_);
}
int Database::Changes() const {
  return sqlite3_changes(db_);
}

Transaction::Transaction(Database& db) : db_(db) {
  db_.Exec("BEGIN IMMEDIATE");
}
Transaction::~Transaction() {
  if (!done_) sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
}
void Transaction::Commit() {
  db_.Exec("COMMIT");
  done_ = true;
}

}  // namespace anju::server
