// The database seam on a real SQLite file: migrations (and adopting a file that kept its
// version in user_version), joined transactions, commit hooks, readers, errors.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "db/db.h"
#include "testing.h"

namespace anju::db {
namespace {

namespace fs = std::filesystem;

const Migrations kSchema{{"CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)",
                          "ALTER TABLE t ADD COLUMN n INTEGER NOT NULL DEFAULT 0"},
                         {}};

class DbTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = anju::testing::TempDir("db"); }
  void TearDown() override { fs::remove_all(dir_); }
  std::unique_ptr<Db> Open(SqliteOptions o = {}) {
    o.name = "test";
    return OpenSqlite(dir_ / "t.db", kSchema, o);
  }
  int64_t Count(Db& db) {
    auto c = db.Acquire();
    Stmt s(c, "SELECT COUNT(*) FROM t");
    s.Step();
    return s.Int(0);
  }
  fs::path dir_;
};

TEST_F(DbTest, MigratesOnceAndRecordsTheVersion) {
  {
    auto db = Open();
    EXPECT_EQ(db->schema_version(), 2);
    auto c = db->Acquire();
    Stmt(c, "INSERT INTO t(v, n) VALUES('a', 1)").Run();
  }
  auto db = Open();
  EXPECT_EQ(db->schema_version(), 2);
  EXPECT_EQ(Count(*db), 1);
  // A newer file than the program refuses to open.
  {
    auto c = db->Acquire();
    Stmt(c, "INSERT INTO schema_version(version, applied_ms) VALUES(3, 0)").Run();
  }
  db.reset();
  EXPECT_EQ(anju::testing::CodeOf([&] { Open(); }), ErrorCode::kCorrupt);
}

TEST_F(DbTest, AdoptsAFileThatKeptItsVersionInUserVersion) {
  {
    sqlite3* raw = nullptr;
    ASSERT_EQ(sqlite3_open((dir_ / "t.db").c_str(), &raw), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(raw,
                           "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE); "
                           "INSERT INTO t(v) VALUES('old'); PRAGMA user_version = 1;",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(raw);
  }
  auto db = Open();
  EXPECT_EQ(db->schema_version(), 2);  // adopted as 1, then migration 2 applied
  auto c = db->Acquire();
  Stmt s(c, "SELECT v, n FROM t");
  ASSERT_TRUE(s.Step());
  EXPECT_EQ(s.Text(0), "old");
  EXPECT_EQ(s.Int(1), 0);
}

TEST_F(DbTest, TransactionsJoinAndHooksFollowTheOutcome) {
  auto db = Open();
  int before = 0, after = 0;
  {
    auto c = db->Acquire();
    Transaction outer(c);
    Stmt(c, "INSERT INTO t(v) VALUES('x')").Run();
    {
      Transaction inner(c);  // joins: its commit decides nothing
      Stmt(c, "INSERT INTO t(v) VALUES('y')").Run();
      c.BeforeCommit([&] { ++before; });
      c.AfterCommit([&] { ++after; });
      inner.Commit();
    }
    EXPECT_EQ(before, 0);
    EXPECT_EQ(after, 0);
    // not committed: both rows roll back, the hooks never run
  }
  EXPECT_EQ(Count(*db), 0);
  EXPECT_EQ(before + after, 0);
  {
    auto c = db->Acquire();
    Transaction tx(c);
    Stmt(c, "INSERT INTO t(v) VALUES('x')").Run();
    c.AfterCommit([&] { ++after; });
    c.BeforeCommit([&] { ++before; });
    tx.Commit();
    EXPECT_EQ(before, 1);
    EXPECT_EQ(after, 1);
    // Outside a transaction a hook runs at once.
    c.AfterCommit([&] { ++after; });
    EXPECT_EQ(after, 2);
  }
  EXPECT_EQ(Count(*db), 1);
  // A failing before-commit hook turns the commit into a rollback.
  {
    auto c = db->Acquire();
    Transaction tx(c);
    Stmt(c, "INSERT INTO t(v) VALUES('z')").Run();
    c.BeforeCommit([] { throw Error(ErrorCode::kIo, "head not written"); });
    EXPECT_EQ(anju::testing::CodeOf([&] { tx.Commit(); }), ErrorCode::kIo);
  }
  EXPECT_EQ(Count(*db), 1);
}

TEST_F(DbTest, ConstraintsAndDamageAreNamed) {
  auto db = Open();
  {
    auto c = db->Acquire();
    Stmt(c, "INSERT INTO t(v) VALUES('dup')").Run();
    try {
      Stmt(c, "INSERT INTO t(v) VALUES('dup')").Run();
      FAIL() << "unique constraint not enforced";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
      EXPECT_EQ(e.reason(), "constraint");
      EXPECT_NE(std::string(e.what()).find("test database"), std::string::npos);
    }
    EXPECT_EQ(c.Changes(), 0);
    Stmt(c, "INSERT INTO t(v) VALUES('next')").Run();
    EXPECT_EQ(c.Changes(), 1);
    EXPECT_GT(c.LastInsertId(), 1);
  }
  db.reset();
  // A file that is not a database.
  fs::remove(dir_ / "t.db-wal");
  fs::remove(dir_ / "t.db-shm");
  {
    std::ofstream f(dir_ / "t.db", std::ios::binary | std::ios::trunc);
    f << std::string(8192, 'x');
  }
  EXPECT_EQ(anju::testing::CodeOf([&] { Open(); }), ErrorCode::kCorrupt);
}

TEST_F(DbTest, ReadersSeeCommittedRowsWithoutWaitingForTheWriter) {
  SqliteOptions o;
  o.readers = 2;
  auto db = Open(o);
  auto w = db->Acquire();
  Transaction tx(w);
  Stmt(w, "INSERT INTO t(v) VALUES('pending')").Run();
  // The writer holds its transaction open; a reader still answers (WAL), without the row.
  std::thread reader([&] {
    auto r = db->AcquireReader();
    Stmt s(r, "SELECT COUNT(*) FROM t");
    s.Step();
    EXPECT_EQ(s.Int(0), 0);
  });
  reader.join();
  tx.Commit();
  auto r = db->AcquireReader();
  Stmt s(r, "SELECT COUNT(*) FROM t");
  s.Step();
  EXPECT_EQ(s.Int(0), 1);
}

TEST_F(DbTest, CopyIsAConsistentDatabase) {
  auto db = Open();
  {
    auto c = db->Acquire();
    for (int i = 0; i < 100; ++i) Stmt(c, "INSERT INTO t(v) VALUES(?)").Bind(1, std::to_string(i)).Run();
  }
  db->CopyTo(dir_ / "copy.db");
  SqliteOptions ro;
  ro.read_only = true;
  ro.name = "copy";
  auto copy = OpenSqlite(dir_ / "copy.db", {}, ro);
  EXPECT_EQ(copy->schema_version(), 2);
  EXPECT_EQ(Count(*copy), 100);
  EXPECT_GT(db->SizeBytes(), 0);
  EXPECT_EQ(anju::testing::CodeOf([&] { OpenSqlite(dir_ / "none.db", {}, ro); }),
            ErrorCode::kNotFound);
}

TEST(Placeholders, QuestionMarksBecomeDollarNumbers) {
  EXPECT_EQ(ToDollarParams("SELECT * FROM t WHERE a = ? AND b = ?"),
            "SELECT * FROM t WHERE a = $1 AND b = $2");
  EXPECT_EQ(ToDollarParams("UPDATE t SET a = ?2 WHERE id = ?1 OR x = ?"),
            "UPDATE t SET a = $2 WHERE id = $1 OR x = $3");
  EXPECT_EQ(ToDollarParams("SELECT '?', \"a?\" -- what?\nFROM t WHERE v = ?"),
            "SELECT '?', \"a?\" -- what?\nFROM t WHERE v = $1");
}

}  // namespace
}  // namespace anju::db
