#include "store/sqlite_stmt.h"

#include "core/error.h"

namespace anju::store {

SqliteStmt::SqliteStmt(sqlite3* db, const char* sql, SqliteFail fail) : db_(db), fail_(fail) {
  int rc = sqlite3_prepare_v2(db, sql, -1, &s_, nullptr);
  if (rc != SQLITE_OK) Raise(rc, "prepare");
}

SqliteStmt::~SqliteStmt() {
  sqlite3_finalize(s_);
}

void SqliteStmt::Raise(int rc, const char* what) {
  fail_(db_, rc, what);
  throw Error(ErrorCode::kIo, std::string("sqlite ") + what + ": " + sqlite3_errstr(rc));
}

SqliteStmt& SqliteStmt::Check(int rc, const char* what) {
  if (rc != SQLITE_OK) Raise(rc, what);
  return *this;
}

SqliteStmt& SqliteStmt::Bind(int i, int64_t v) {
  return Check(sqlite3_bind_int64(s_, i, v), "bind");
}

SqliteStmt& SqliteStmt::Bind(int i, std::string_view v) {
  return Check(sqlite3_bind_text(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT), "bind");
}

SqliteStmt& SqliteStmt::Bind(int i, std::span<const uint8_t> v) {
  return Check(sqlite3_bind_blob(s_, i, v.data(), int(v.size()), SQLITE_TRANSIENT), "bind");
}

SqliteStmt& SqliteStmt::BindBlobOrNull(int i, std::span<const uint8_t> v) {
  if (v.empty()) return Check(sqlite3_bind_null(s_, i), "bind");
  return Bind(i, v);
}

bool SqliteStmt::Step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Raise(rc, "step");
}

SqliteStmt& SqliteStmt::Reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
  return *this;
}

int64_t SqliteStmt::Int(int col) const {
  return sqlite3_column_int64(s_, col);
}

std::string SqliteStmt::Text(int col) const {
  auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
  return p ? std::string(p, size_t(sqlite3_column_bytes(s_, col))) : std::string();
}

std::vector<uint8_t> SqliteStmt::Blob(int col) const {
  auto p = static_cast<const uint8_t*>(sqlite3_column_blob(s_, col));
  return p ? std::vector<uint8_t>(p, p + sqlite3_column_bytes(s_, col)) : std::vector<uint8_t>();
}

void ThrowSqliteError(sqlite3* db, int rc, const std::string& what, std::string_view name,
                      std::string_view damaged, std::string_view full) {
  const std::string msg = what + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  const int primary = rc & 0xff;
  if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB || primary == SQLITE_FORMAT)
    throw Error(ErrorCode::kCorrupt, std::string(damaged) + " (" + msg + ")");
  if (primary == SQLITE_FULL && !full.empty())
    throw Error(ErrorCode::kUnavailable, std::string(full) + " (" + msg + ")");
  throw Error(ErrorCode::kIo, std::string(name) + ": " + msg);
}

}  // namespace anju::store
