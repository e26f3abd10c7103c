// A prepared SQLite statement shared by the store's databases (gallery, outbox):
// RAII, chainable binds, typed column reads. Each database maps SQLite failures to
// anju::Error its own way (its name in the message, which codes mean "corrupt").
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace anju::store {

// Must throw; called with the connection (or null), the SQLite result code and the step.
using SqliteFail = void (*)(sqlite3* db, int rc, const std::string& what);

// The usual mapping of a failure of the database called NAME: a damaged file or one that is
// not a database → Error(kCorrupt, DAMAGED), a full disk → Error(kUnavailable, FULL) (or
// kIo when FULL is empty), anything else → Error(kIo); SQLite's message is appended.
[[noreturn]] void ThrowSqliteError(sqlite3* db, int rc, const std::string& what,
                                   std::string_view name, std::string_view damaged,
                                   std::string_view full = {});

class SqliteStmt {
 public:
  SqliteStmt(sqlite3* db, const char* sql, SqliteFail fail);
  ~SqliteStmt();
  SqliteStmt(const SqliteStmt&) = delete;
  SqliteStmt& operator=(const SqliteStmt&) = delete;

  SqliteStmt& Bind(int i, int64_t v);
  SqliteStmt& Bind(int i, std::string_view v);
  SqliteStmt& Bind(int i, std::span<const uint8_t> v);            // zero-length blob if empty
  SqliteStmt& BindBlobOrNull(int i, std::span<const uint8_t> v);  // NULL if empty
  // True while rows come; false when done.
  bool Step();
  SqliteStmt& Reset();  // also clears the bindings

  int64_t Int(int col) const;
  std::string Text(int col) const;
  std::vector<uint8_t> Blob(int col) const;

 private:
  SqliteStmt& Check(int rc, const char* what);
  [[noreturn]] void Raise(int rc, const char* what);
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
  SqliteFail fail_;
};

}  // namespace anju::store
