// The tamper-evident audit log (R4.2.2.1): records are chained with SM3, the
// chain is checkpointed with HMAC-SM3 and the head file covers the tail. Each attack edits
// archive.db through SQLite directly (after dropping the append-only triggers), the way an
// intruder with file access would, and must be named by VerifyAudit.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "crypto/keyfile.h"
#include "crypto/sm3.h"
#include "server/audit/audit_log.h"
#include "server/storage/archive_schema.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// The documented canonical encoding, written independently of audit.cpp: an attacker who
// recomputes the chain after an edit uses exactly this.
std::string Chain(const std::string& prev_hex, int64_t id, int64_t time_ms,
                  const std::vector<std::string>& fields) {
  std::string c = "anju-audit/v1";
  for (uint64_t v : {uint64_t(id), uint64_t(time_ms)})
    for (int i = 7; i >= 0; --i) c += char(uint8_t(v >> (8 * i)));
  for (const auto& f : fields) {
    for (int i = 3; i >= 0; --i) c += char(uint8_t(uint32_t(f.size()) >> (8 * i)));
    c += f;
  }
  crypto::Bytes prev = prev_hex.empty() ? crypto::Bytes(32, 0) : crypto::FromHex(prev_hex);
  prev.insert(prev.end(), c.begin(), c.end());
  return crypto::ToHex(crypto::Sm3(crypto::ByteView(prev)));
}

class AuditTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = anju::testing::TempDir("audit");
    file_ = dir_ / "archive.db";
    policy_.checkpoint_every = 5;
    policy_.checkpoint_interval_ms = 0;
    Open();
  }
  void TearDown() override {
    Close();
    fs::remove_all(dir_);
  }
  void Open() {
    db_ = OpenArchiveDb(file_);
    AttachAuditKey(*db_, key_, policy_);
  }
  void Close() {
    if (!db_) return;
    DetachAuditKey(*db_);
    db_.reset();
  }
  // N records, alternating the old and the new call.
  void Write(int n) {
    auto conn = db_->Acquire();
    for (int i = 0; i < n; ++i) {
      if (i % 2)
        Audit(conn, "alice", "person_update", "persons/P" + std::to_string(i), {{"i", i}});
      else
        Audit(conn, AuditEntry{"bob",
                               "192.0.2.7:40000",
                               "photo_view",
                               "persons/P1",
                               i % 4 ? "ok" : "denied",
                               {{"photo", i}}});
    }
  }
  // Raw SQL on the closed database, triggers dropped first.
  void Tamper(const std::string& sql) {
    Close();
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(file_.c_str(), &h), SQLITE_OK);
    char* err = nullptr;
    const std::string all =
        "DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete; "
        "DROP TRIGGER IF EXISTS audit_checkpoints_no_update; "
        "DROP TRIGGER IF EXISTS audit_checkpoints_no_delete; " +
        sql;
    ASSERT_EQ(sqlite3_exec(h, all.c_str(), nullptr, nullptr, &err), SQLITE_OK) << err;
    sqlite3_close(h);
  }
  // Rewrites every stored hash from the first record on, as an attacker without the key can.
  void Rechain() {
    Close();
    sqlite3* h = nullptr;
    ASSERT_EQ(sqlite3_open(file_.c_str(), &h), SQLITE_OK);
    sqlite3_exec(h, "DROP TRIGGER IF EXISTS audit_no_update", nullptr, nullptr, nullptr);
    sqlite3_stmt* s = nullptr;
    sqlite3_prepare_v2(h,
                       "SELECT id, time_ms, actor, source, action, object, result, detail FROM "
                       "audit ORDER BY id",
                       -1, &s, nullptr);
    std::vector<std::pair<int64_t, std::string>> hashes;
    std::string prev;
    while (sqlite3_step(s) == SQLITE_ROW) {
      std::vector<std::string> f;
      for (int c = 2; c < 8; ++c)
        f.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, c)));
      prev = Chain(prev, sqlite3_column_int64(s, 0), sqlite3_column_int64(s, 1), f);
      hashes.emplace_back(sqlite3_column_int64(s, 0), prev);
    }
    sqlite3_finalize(s);
    for (const auto& [id, hash] : hashes) {
      const std::string sql =
          "UPDATE audit SET hash = '" + hash + "' WHERE id = " + std::to_string(id);
      ASSERT_EQ(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    }
    sqlite3_close(h);
  }
  AuditVerifyResult Verify() {
    const AuditVerifyResult r = VerifyAuditFile(file_, key_);
    std::printf("    verify: %s\n", r.ToJson().dump().c_str());
    return r;
  }

  fs::path dir_, file_;
  crypto::DataKey key_ = crypto::DataKey::Generate();
  AuditPolicy policy_;
  std::unique_ptr<db::Db> db_;
};

TEST_F(AuditTest, IntactChainVerifiesWithCheckpointsAndHead) {
  Write(23);
  const AuditVerifyResult live = [&] {
    auto conn = db_->Acquire();
    return VerifyAudit(conn, key_);
  }();
  EXPECT_TRUE(live.ok) << live.problem;
  Close();
  const AuditVerifyResult r = Verify();
  ASSERT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.checked, 23);
  EXPECT_EQ(r.last_id, 23);
  EXPECT_TRUE(r.keyed);
  EXPECT_GE(r.checkpoints, 5);  // every 5 records, plus start and shutdown
  EXPECT_TRUE(fs::exists(dir_ / "audit.head"));
  // The stored hashes follow the documented encoding.
  auto db = OpenArchiveDb(file_);
  auto conn = db->Acquire();
  const auto rows = ReadAudit(conn, {});
  ASSERT_EQ(rows.size(), 23u);
  std::string prev;
  for (const auto& r2 : rows) {
    prev = Chain(prev, r2.id, r2.time_ms,
                 {r2.actor, r2.source, r2.action, r2.object, r2.result, r2.detail});
    EXPECT_EQ(prev, r2.hash) << r2.id;
  }
  EXPECT_EQ(rows[0].source, "192.0.2.7:40000");
  EXPECT_EQ(rows[0].result, "denied");
  // Without the key only the chain is checked, and says so.
  const auto unkeyed = VerifyAudit(conn, std::nullopt);
  EXPECT_TRUE(unkeyed.ok);
  EXPECT_FALSE(unkeyed.keyed);
  // The triggers still refuse edits through the normal connection.
  EXPECT_THROW(conn.Exec("UPDATE audit SET actor = 'x' WHERE id = 3"), Error);
  EXPECT_THROW(conn.Exec("DELETE FROM audit WHERE id = 3"), Error);
  EXPECT_THROW(conn.Exec("DELETE FROM audit_checkpoints"), Error);
}

TEST_F(AuditTest, EditedRecordIsNamed) {
  Write(12);
  Tamper("UPDATE audit SET actor = 'mallory' WHERE id = 7");
  const auto r = Verify();
  EXPECT_FALSE(r.ok);
  ASSERT_TRUE(r.first_bad);
  EXPECT_EQ(*r.first_bad, 7);
  EXPECT_NE(r.problem.find("record 7"), std::string::npos) << r.problem;
}

TEST_F(AuditTest, EditedAndRechainedIsCaughtByTheCheckpoints) {
  Write(12);
  Tamper("UPDATE audit SET detail = '{\"i\":999}' WHERE id = 8");
  Rechain();
  // The chain is consistent in itself again; only the checkpoints (which need the key to
  // forge) tell.
  const auto r = Verify();
  EXPECT_FALSE(r.ok);
  ASSERT_TRUE(r.first_bad);
  // The checkpoint after record 5 still holds; the one at 10 does not: 6..10 is named.
  EXPECT_EQ(*r.first_bad, 6);
  EXPECT_LE(*r.first_bad, 8);
}

TEST_F(AuditTest, DeletedRecordIsNamed) {
  Write(12);
  Tamper("DELETE FROM audit WHERE id = 9");
  const auto r = Verify();
  EXPECT_FALSE(r.ok);
  ASSERT_TRUE(r.first_bad);
  EXPECT_EQ(*r.first_bad, 9);
  EXPECT_NE(r.problem.find("missing"), std::string::npos) << r.problem;
}

TEST_F(AuditTest, DeletedAndRenumberedIsNamed) {
  Write(12);
  // Close the gap so the ids look contiguous: 10..12 become 9..11.
  Tamper("DELETE FROM audit WHERE id = 9; UPDATE audit SET id = id - 1 WHERE id > 9");
  const auto r = Verify();
  EXPECT_FALSE(r.ok);
  ASSERT_TRUE(r.first_bad);
  EXPECT_EQ(*r.first_bad, 9);
}

TEST_F(AuditTest, ReorderedRecordsAreNamed) {
  Write(12);
  Tamper(
      "UPDATE audit SET id = -4 WHERE id = 4; UPDATE audit SET id = 4 WHERE id = 5; "
      "UPDATE audit SET id = 5 WHERE id = -4");
  const auto r = Verify();
  EXPECT_FALSE(r.ok);
  ASSERT_TRUE(r.first_bad);
  EXPECT_EQ(*r.first_bad, 4);
}

TEST_F(AuditTest, InsertedRecordIsNamed) {
  Write(12);
  // Make room after record 6 and insert a record there with a plausible hash.
  Tamper(
      "UPDATE audit SET id = id + 1000 WHERE id > 6; UPDATE audit SET id = id - 999 WHERE id > "
      "1000; INSERT INTO audit(id, time_ms, actor, source, action, object, result, detail, hash) "
      "SELECT 7, time_ms, 'alice', '', 'consent_grant', 'persons/P9', 'ok', '{}', hash FROM "
      "audit WHERE id = 6");
  const auto r = Verify();
  EXPECT_FALSE(r.ok);
  ASSERT_TRUE(r.first_bad);
  EXPECT_EQ(*r.first_bad, 7);
}

TEST_F(AuditTest, RecordAppendedWithoutTheKeyIsNamed) {
  Write(12);
  Close();
  {
    // A correct chain hash (SM3 needs no key), but the head does not cover it.
    auto db = OpenArchiveDb(file_);
    auto conn = db->Acquire();
    Audit(conn, "mallory", "login", "users/mallory");
  }
  const auto r = Verify();
  EXPECT_FALSE(r.ok);
  ASSERT_TRUE(r.first_bad);
  EXPECT_EQ(*r.first_bad, 13);
}

TEST_F(AuditTest, TailTruncationIsDetected) {
  Write(12);  // checkpoints at 5 and 10 (and start / shutdown)
  // After the last checkpoint: only the head file knows.
  Tamper("DELETE FROM audit WHERE id > 11");
  auto r = Verify();
  EXPECT_FALSE(r.ok);
  ASSERT_TRUE(r.first_bad);
  EXPECT_EQ(*r.first_bad, 12);
  EXPECT_NE(r.problem.find("missing"), std::string::npos) << r.problem;
  // Deeper, together with the checkpoints that name the lost records.
  Tamper("DELETE FROM audit WHERE id > 7; DELETE FROM audit_checkpoints WHERE audit_id > 7");
  r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(*r.first_bad, 8);
  // And with the head file gone as well: the checkpoints still exist.
  fs::remove(dir_ / "audit.head");
  r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("audit.head"), std::string::npos) << r.problem;
}

TEST_F(AuditTest, ForgedHeadIsRefused) {
  Write(6);
  Close();
  const fs::path head = dir_ / "audit.head";
  std::ifstream in(head);
  json j = json::parse(in);
  j["audit_id"] = 5;
  crypto::WriteSecretFile(head, j.dump());
  const auto r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("HMAC"), std::string::npos) << r.problem;
  // A checkpoint with another key is refused too.
  const auto other = VerifyAuditFile(file_, crypto::DataKey::Generate());
  EXPECT_FALSE(other.ok);
}

TEST_F(AuditTest, RestartAfterTruncationRecordsTheGapInTheLog) {
  Write(12);
  Tamper("DELETE FROM audit WHERE id > 10; DELETE FROM audit_checkpoints WHERE audit_id > 10");
  Open();  // the server starts again
  Close();
  const auto r = Verify();
  ASSERT_TRUE(r.ok) << r.problem;
  auto db = OpenArchiveDb(file_);
  auto conn = db->Acquire();
  AuditQuery q;
  q.action = "audit_head_ahead";
  const auto notes = ReadAudit(conn, q);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(notes[0].result, "alert");
  EXPECT_EQ(json::parse(notes[0].detail)["head_id"], 12);
  EXPECT_EQ(json::parse(notes[0].detail)["last_id"], 10);
}

TEST_F(AuditTest, RolledBackRecordLeavesTheHeadAlone) {
  Write(3);
  {
    auto conn = db_->Acquire();
    db::Transaction tx(conn);
    Audit(conn, "alice", "person_create", "persons/X");
    // no Commit: rolled back
  }
  Write(2);
  Close();
  const auto r = Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.checked, 5);
}

TEST_F(AuditTest, RecordsFromBeforeTheChainAreChained) {
  Close();
  fs::remove(dir_ / "audit.head");
  // A v2 archive with unchained records: hash NULL, as the migration leaves them.
  {
    auto db = OpenArchiveDb(file_);
    auto conn = db->Acquire();
    for (int i = 1; i <= 4; ++i)
      conn.Exec("INSERT INTO audit(time_ms, actor, action, object, detail) VALUES(" +
                std::to_string(1700000000000 + i) + ", 'admin', 'create', 'sites/" +
                std::to_string(i) + "', '{}')");
  }
  EXPECT_FALSE(VerifyAuditFile(file_, std::nullopt).ok);
  Open();
  Write(2);
  Close();
  const auto r = Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.checked, 6);
}

TEST_F(AuditTest, ExportCsvAndJsonForTheAuditAdministrator) {
  Write(10);
  Close();
  AuditQuery q;
  q.actor = "bob";
  std::ostringstream csv, js;
  EXPECT_EQ(ExportAuditFile(file_, q, "csv", csv), 5u);
  const std::string c = csv.str();
  EXPECT_EQ(c.rfind("\xEF\xBB\xBFid,time_utc,", 0), 0u);
  EXPECT_NE(c.find("192.0.2.7:40000"), std::string::npos);
  EXPECT_NE(c.find("\"{\"\"photo\"\":0}\""), std::string::npos) << c;
  q = {};
  q.object_prefix = "persons/P1";
  EXPECT_EQ(ExportAuditFile(file_, q, "json", js), 6u);  // P1 x5 and P1 from alice
  std::istringstream lines(js.str());
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    const json j = json::parse(line);
    EXPECT_TRUE(j["object"].get<std::string>().starts_with("persons/P1"));
    EXPECT_TRUE(j["detail"].is_object());
    ++n;
  }
  EXPECT_EQ(n, 6);
  std::ostringstream bad;
  EXPECT_EQ(anju::testing::CodeOf([&] { ExportAuditFile(file_, {}, "xml", bad); }),
            ErrorCode::kInvalidArgument);
  // Paging newest first.
  auto db = OpenArchiveDb(file_);
  auto conn = db->Acquire();
  AuditQuery page;
  page.newest_first = true;
  page.limit = 3;
  auto p1 = ReadAudit(conn, page);
  ASSERT_EQ(p1.size(), 3u);
  EXPECT_EQ(p1[0].id, 10);
  page.before_id = p1.back().id;
  auto p2 = ReadAudit(conn, page);
  ASSERT_EQ(p2.size(), 3u);
  EXPECT_EQ(p2[0].id, 7);
}

}  // namespace
}  // namespace anju::server
