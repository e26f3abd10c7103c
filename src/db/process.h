// Running PostgreSQL's command-line tools (pg_dump, pg_restore, initdb, pg_ctl) from src/db.
// Internal to the db module.
#pragma once

#include <string>
#include <vector>

namespace anju::db::detail {

struct ProcessResult {
  int exit_code = -1;  // 128 + signal when it was killed
  std::string output;  // stdout and stderr together (the last 64 KiB)
};

// Runs ARGV (argv[0] is looked up in PATH when it has no '/'), stdin from /dev/null, with
// EXTRA_ENV ("NAME=value", overriding the inherited ones), in directory CWD (empty = ours),
// and waits for it. Error(kUnavailable) when it cannot be started.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::vector<std::string>& extra_env = {},
                         const std::string& cwd = {});

}  // namespace anju::db::detail
