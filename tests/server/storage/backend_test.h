// What the repository tests of this folder share (docs/storage.md): one throwaway PostgreSQL
// 15 for the whole test binary (db/local_postgres.h), and a fixture that opens the database
// under test on the backend its parameter names, "sqlite" (a real file in a temporary
// directory) or "postgres" (a fresh database on that server), with its dialect's migrations.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <system_error>

#include "db/db.h"
#include "db/local_postgres.h"
#include "testing.h"

namespace anju::server::storage {

inline db::LocalPostgres& SharedPostgres() {
  static std::unique_ptr<db::LocalPostgres> pg = std::make_unique<db::LocalPostgres>();
  return *pg;
}

class BackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  // OPEN_FILE opens a SQLite file, OPEN_URL a PostgreSQL database; NAME names the files.
  void Open(const std::string& name,
            const std::function<std::unique_ptr<db::Db>(const std::filesystem::path&)>& open_file,
            const std::function<std::unique_ptr<db::Db>(const std::string&)>& open_url) {
    if (GetParam() == "postgres") {
      if (auto why = db::LocalPostgres::Unavailable(); !why.empty())
        GTEST_SKIP() << "PostgreSQL tests skipped: " << why;
      db_ = open_url(SharedPostgres().CreateDatabase());
    } else {
      dir_ = anju::testing::TempDir(
          name + "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
      db_ = open_file(dir_ / (name + ".db"));
    }
  }
  void TearDown() override {
    db_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::filesystem::path dir_;
  std::unique_ptr<db::Db> db_;
};

}  // namespace anju::server::storage
