// A throwaway PostgreSQL server for tests and benchmarks (`anju bench cluster`): PostgreSQL
// 15's own binaries, run as the `postgres` user (through runuser when we are root, directly
// otherwise), in a temporary directory, listening on a free loopback port only. Never a
// system service, never a fixed port.
//
// initdb takes seconds, so an initialised cluster is kept once as a template under
// ~/.cache/anju/pg-template/<major version> and copied for every server: a start takes a
// fraction of a second.
//
//   if (auto why = db::LocalPostgres::Unavailable(); !why.empty()) GTEST_SKIP() << why;
//   db::LocalPostgres pg;                          // started
//   auto db = db::OpenPostgres(pg.CreateDatabase(), migrations);
//   pg.Kill(); pg.Start();                         // a crash and a recovery, same port
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace anju::db {

struct LocalPostgresOptions {
  // PostgreSQL's programs; empty = /usr/lib/postgresql/15/bin.
  std::filesystem::path bin_dir;
  // The data and the log; empty = a new directory under the system temp dir, removed by
  // the destructor.
  std::filesystem::path dir;
  // Where the initialised template is kept; empty = ~/.cache/anju/pg-template/<major>.
  std::filesystem::path template_dir;
  // fsync and full_page_writes. Off (the default) for tests: a commit still reaches the
  // operating system before it returns (synchronous_commit stays on), so a crash of
  // PostgreSQL loses nothing, a crash of the machine could. On for benchmarks that compare
  // durable commits with SQLite's synchronous=FULL.
  bool durable = false;
  int max_connections = 100;
  std::string shared_buffers = "32MB";
};

// One thread at a time per object; several objects (servers) may run side by side.
class LocalPostgres {
 public:
  // Why a local server cannot run here ("PostgreSQL 15 is not installed …"); empty when
  // it can. Tests skip with this message.
  static std::string Unavailable(const LocalPostgresOptions& options = {});

  // Prepares the directory (from the template, creating it the first time) and starts the
  // server. Error(kUnavailable) with the reason (and the server log) when it cannot.
  explicit LocalPostgres(LocalPostgresOptions options = {});
  ~LocalPostgres();  // stops the server, removes the directory it created
  LocalPostgres(const LocalPostgres&) = delete;
  LocalPostgres& operator=(const LocalPostgres&) = delete;

  int port() const { return port_; }
  // postgresql://postgres@127.0.0.1:<port>/<database> (trust authentication, loopback).
  std::string Url(std::string_view database = "postgres") const;
  // Creates a new empty database (UTF-8, C collation) and returns its URL; NAME empty = a
  // fresh name ("anju_1", "anju_2", …).
  std::string CreateDatabase(std::string name = {});

  // A fast shutdown (SIGINT: sessions are ended, the data written), waiting for it.
  void Stop();
  // A crash: SIGKILL to the server and all its processes, waiting until they are gone.
  void Kill();
  // Starts it again on the same port and data (after Stop or Kill: crash recovery).
  void Start();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::filesystem::path& dir() const { return dir_; }
  // The end of the server's log (for error messages).
  std::string LogTail(size_t bytes = 4000) const;

 private:
  void StartOnce();
  std::vector<std::string> AsPostgres(std::vector<std::string> argv) const;

  LocalPostgresOptions o_;
  std::filesystem::path bin_;
  std::filesystem::path dir_;
  bool own_dir_ = false;
  int port_ = 0;
  pid_t pid_ = 0;
  int databases_ = 0;
};

}  // namespace anju::db
