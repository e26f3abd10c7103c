// A small SQLite connection wrapper for the server's archive database: typed binds
// (including NULL), typed reads, transactions and numbered schema migrations recorded in
// a schema_version table. One connection guarded by one mutex: admin and device traffic
// on a community server is light, and serialising keeps every change consistent.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace anju::server {

class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, int v) { return Bind(i, int64_t(v)); }
  Stmt& Bind(int i, double v);
  Stmt& Bind(int i, std::string_view v);
  Stmt& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Stmt& Bind(int i, const char* v) { return Bind(i, std::string_view(v)); }
  Stmt& Bind(int i, std::span<const uint8_t> v);
  Stmt& BindNull(int i);
  template <typename T>
  Stmt& Bind(int i, const std::optional<T>& v) {
    return v ? Bind(i, *v) : BindNull(i);
  }
  bool Step();  // true while rows come
  void Run();   // Step() once, for statements without rows
  Stmt& Reset();

  bool IsNull(int col) const;
  int64_t Int(int col) const;
  double Double(int col) const;
  std::string Text(int col) const;
  std::vector<uint8_t> Blob(int col) const;
  std::optional<int64_t> OptInt(int col) const;

 private:
  void Check(int rc, const char* what);
  sqlite3* db_;
  sqlite3_stmt* s_ = nullptr;
};

// Throws the anju::Error matching an SQLite failure (constraint → kInvalidArgument,
// corrupt → kCorrupt, disk full → kStorageFull, busy → kUnavailable, else kIo).
[[noreturn]] void ThrowSqlite(sqlite3* db, int rc, const std::string& what);
// For a commit hook that refuses the commit (the audit head, audit.cpp): the COMMIT it turns
// into a rollback then throws Error(CODE, WHY) on this thread instead of SQLite's
// "constraint failed" (a full disk became a 400).
void RefuseCommit(ErrorCode code, std::string why);

class Database {
 public:
  // Opens (creating) FILE with WAL, foreign keys on and synchronous=FULL, then applies
  // every migration newer than the stored schema version, each in its own transaction.
  Database(const std::filesystem::path& file, const std::vector<std::string>& migrations);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  sqlite3* handle() { return db_; }
  std::mutex& mutex() { return mu_; }
  void Exec(std::string_view sql);
  int64_t LastInsertId() const;
  int Changes() const;
  int schema_version() const { return version_; }
  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  sqlite3* db_ = nullptr;
  std::mutex mu_;
  int version_ = 0;
};

// BEGIN IMMEDIATE … COMMIT, rolled back when destroyed without Commit().
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  void Commit();

 private:
  Database& db_;
  bool done_ = false;
};

}  // namespace anju::server
