// The PostgreSQL backend of db.h (libpq): a pool of connections to one database, the same
// Stmt / Transaction / hooks API as SQLite, errors mapped to anju::Error the same way.
// SQL portable to both backends: docs/storage.md.
//
//   auto db = db::OpenPostgres("postgresql://anju@db.example/archive", migrations,
//                              {.name = "archive", .pool_size = 8});
//   auto c = db->Acquire();            // a pooled connection (waits while all are leased)
//
// How it differs from SQLite, briefly (details in docs/storage.md):
// - Acquire() and AcquireReader() lease from the same pool; transactions on different
//   connections run concurrently (READ COMMITTED), they are not serialised by a writer lock.
//   Use LockInTransaction() where SQLite code relied on that.
// - A statement that fails inside a transaction aborts it: every later statement and the
//   commit fail (kInternal, reason "aborted") until the Transaction is destroyed.
// - A result is read whole when the statement first steps, so another statement may run on
//   the same connection while its rows are being read (as with SQLite).
// - LastInsertId() is `SELECT lastval()`: the value last drawn from a sequence in this
//   session, i.e. the key of the last INSERT into a table with an identity (or serial) key.
//   Prefer `INSERT … RETURNING id`.
// - A broken connection (server restarted, network gone) throws kUnavailable once; the pool
//   reconnects it on its next lease.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "db/db.h"

namespace anju::db {

struct PostgresOptions {
  std::string name = "database";  // in error messages ("archive", "events", …)
  int pool_size = 4;              // connections at most (opened when first needed)
  // How long Acquire() waits for a free connection before Error(kUnavailable).
  int acquire_timeout_ms = 30000;
  int connect_timeout_s = 5;
  // Cache server-side prepared statements per connection (off behind a pooler that does
  // not keep sessions, e.g. PgBouncer in transaction mode).
  bool prepare = true;
  // pg_dump and pg_restore for CopyTo / RestorePostgresDump; empty = the server's major
  // version under /usr/lib/postgresql/<major>/bin, else from PATH.
  std::string tools_dir;
  // The schema this database lives in, created when missing and put first on every
  // connection's search_path; empty = the URL's search_path (usually "public"). Lets the
  // archive, events and captures share one PostgreSQL database (docs/storage.md). A
  // lower-case SQL identifier: letters, digits and '_'.
  std::string schema;
};

// Connects to URL (a libpq URI or "key=value" string), then applies the migrations
// (Migrations::postgres) newer than the database's schema_version, each in its own
// transaction, under a session advisory lock: servers starting at once migrate once.
// Error(kUnavailable) when the server cannot be reached.
//
// One Db per database: schema_version is a table of the current schema, so two anju
// databases (archive, events, captures) need two PostgreSQL databases, or two schemas
// (PostgresOptions::schema, or search_path in the URL: `?options=-csearch_path%3Devents`).
std::unique_ptr<Db> OpenPostgres(const std::string& url, const Migrations& migrations,
                                 PostgresOptions options = {});

// Leadership leases (docs/storage.md, "Leadership"): a session-level advisory lock on KEY,
// taken without waiting. The lock is held by the CONNECTION: keep the Conn leased while
// you lead, check HoldsAdvisoryLock() now and then (a connection that broke has lost it,
// and another server may lead already). A Conn given back to the pool releases every
// advisory lock it took, so a lease never outlives its holder's Conn. PostgreSQL only
// (Error(kInvalidArgument) on another backend).
bool TryAdvisoryLock(Conn& c, int64_t key);
void AdvisoryUnlock(Conn& c, int64_t key);
// Whether C's session still holds KEY (Error(kUnavailable) when the connection is gone).
bool HoldsAdvisoryLock(Conn& c, int64_t key);

// Serialises the current transaction with every other one that takes KEY, until it ends
// (pg_advisory_xact_lock). Where SQLite code relied on its single writer (read a head,
// append after it), this keeps it correct on PostgreSQL. SQLite: nothing to do, the writer
// lock already serialises. Must be inside a Transaction.
void LockInTransaction(Conn& c, int64_t key);

// A stable advisory lock key for a name ("retention", "audit-chain"): the first 8 bytes
// of its SHA-256, so that every server derives the same key.
int64_t AdvisoryKey(std::string_view name);

// Loads a dump written by CopyTo (pg_dump custom format) into the database at URL, which
// should be empty (a fresh database); Error(kIo) with pg_restore's message when it fails.
void RestorePostgresDump(const std::string& url, const std::filesystem::path& file,
                         const PostgresOptions& options = {});

}  // namespace anju::db
