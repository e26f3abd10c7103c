// Backup and restore (R3.3.2.5, R3.3.2.1): online copy of every database and file into an
// SM4-encrypted, authenticated archive; backup -> wipe -> restore gives the same data;
// tampered, truncated and wrong-key archives are refused.
#include "server/backup/backup.h"
#include "core/error.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <thread>

#include "crypto/bytes.h"
#include "crypto/keyfile.h"
#include "server/events/event_store.h"
#include "store/outbox.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::CodeOf;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A real JPEG: an LFW face when the data is present, else a drawn card; VARIANT writes a
// number on it so the snapshots differ.
std::vector<uint8_t> Jpeg(int variant) {
  static const cv::Mat base = [] {
    cv::Mat m;
    if (auto dir = testing::DataPath("lfw/lfw/Aaron_Eckhart"); !dir.empty())
      m = cv::imread((dir / "Aaron_Eckhart_0001.jpg").string());
    if (m.empty()) {
      m = cv::Mat(120, 120, CV_8UC3, cv::Scalar(90, 120, 160));
      cv::circle(m, {60, 60}, 40, cv::Scalar(180, 190, 220), -1);
    }
    return m;
  }();
  cv::Mat m = base.clone();
  cv::putText(m, std::to_string(variant), {5, 20}, cv::FONT_HERSHEY_SIMPLEX, 0.6,
              cv::Scalar(255, 255, 255));
  std::vector<uint8_t> out;
  cv::imencode(".jpg", m, out);
  return out;
}

json Batch(int n, int64_t t) {
  json events = json::array();
  for (int i = 0; i < n; ++i) {
    json ev = {{"id", store::NewOutboxId()},
               {"kind", "access"},
               {"created_ms", t + i},
               {"payload",
                {{"time_ms", t + i},
                 {"door", i % 3},
                 {"decision", "open"},
                 {"person", testing::Name("P", i)},
                 {"description", "开门 / open"}}}};
    if (i % 4 == 0) ev["snapshot"] = crypto::ToBase64(Jpeg(i));
    events.push_back(ev);
  }
  return {{"events", events}};
}

// Every row of every table, as text, in a stable order.
std::map<std::string, std::vector<std::string>> DumpDb(const fs::path& file) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  std::map<std::string, std::vector<std::string>> out;
  std::vector<std::string> tables;
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name", -1, &s,
                     nullptr);
  while (sqlite3_step(s) == SQLITE_ROW)
    tables.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, 0)));
  sqlite3_finalize(s);
  for (auto& t : tables) {
    sqlite3_prepare_v2(db, ("SELECT * FROM \"" + t + "\" ORDER BY 1").c_str(), -1, &s, nullptr);
    while (sqlite3_step(s) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(s); ++c) {
        const auto* p = static_cast<const uint8_t*>(sqlite3_column_blob(s, c));
        row += crypto::ToHex(crypto::ByteView(p, size_t(sqlite3_column_bytes(s, c)))) + "|";
      }
      out[t].push_back(row);
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return out;
}

std::string Integrity(const fs::path& file) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, nullptr);
  std::string r = sqlite3_step(s) == SQLITE_ROW
                      ? reinterpret_cast<const char*>(sqlite3_column_text(s, 0))
                      : "?";
  sqlite3_finalize(s);
  sqlite3_close(db);
  return r;
}

// Regular files other than SQLite databases and their side files: path -> bytes.
std::map<std::string, std::string> Files(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || name.ends_with(".db") || name.ends_with("-wal") ||
        name.ends_with("-shm"))
      continue;
    std::ifstream in(e.path(), std::ios::binary);
    out[e.path().lexically_relative(dir).generic_string()] =
        std::string((std::istreambuf_iterator<char>(in)), {});
  }
  return out;
}

void Exec(const fs::path& file, const char* sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
}

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = testing::TempDir("backup");
    data_ = root_ / "data";
    fs::create_directories(data_ / "photos" / "p1");
    archive_ = root_ / "backup.anjubak";
  }
  void TearDown() override { fs::remove_all(root_); }

  // A data directory like the server's: events.db with snapshots, an archive database in
  // WAL mode, encrypted photos and a private key file.
  void Populate() {
    {
      EventStore events(data_, data_key_);
      events.Ingest("dev-1", Batch(40, NowMs() - 100000));
      events.Ingest("dev-2", Batch(10, NowMs() - 50000));
    }
    Exec(data_ / "archive.db",
         "PRAGMA journal_mode=WAL; CREATE TABLE people(id INTEGER PRIMARY KEY, name TEXT, "
         "photo BLOB); INSERT INTO people(name, photo) VALUES('张三', x'00FF10'), ('李四', "
         "zeroblob(5000));");
    std::ofstream(data_ / "photos" / "p1" / "1.jpg.sealed", std::ios::binary)
        << std::string(70000, '\x42') << "tail";
    crypto::WriteRawKeyFile(data_ / "server.key", data_key_);
  }

  fs::path root_, data_, archive_;
  crypto::DataKey data_key_ = crypto::DataKey::Generate();
  crypto::DataKey backup_key_ = crypto::DataKey::Generate();
};

TEST_F(BackupTest, BackupWipeRestoreGivesIdenticalData) {
  Populate();
  const auto events_before = DumpDb(data_ / "events.db");
  const auto archive_before = DumpDb(data_ / "archive.db");
  const auto files_before = Files(data_);
  ASSERT_EQ(events_before.at("events").size(), 50u);
  ASSERT_GE(files_before.size(), 15u);  // 13 snapshots, a photo, the key

  const BackupInfo made = CreateBackup(data_, archive_, backup_key_);
  EXPECT_EQ(made.databases(), 2);
  EXPECT_EQ(made.files(), int64_t(files_before.size()));
  EXPECT_EQ(made.key_id, backup_key_.id());
  EXPECT_EQ(fs::status(archive_).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  // Encrypted: no plaintext name or photo bytes in the archive.
  {
    std::ifstream in(archive_, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(bytes.find("张三"), std::string::npos);
    EXPECT_EQ(bytes.find(std::string(64, '\x42')), std::string::npos);
    EXPECT_EQ(bytes.find("photos/p1"), std::string::npos) << "file names are sealed too";
  }
  const BackupInfo verified = VerifyBackup(archive_, backup_key_);
  EXPECT_EQ(verified.entries.size(), made.entries.size());
  EXPECT_EQ(verified.archive_id, made.archive_id);

  fs::remove_all(data_);  // the disaster
  const BackupInfo restored = RestoreBackup(archive_, data_, backup_key_);
  EXPECT_EQ(restored.bytes, made.bytes);
  EXPECT_EQ(DumpDb(data_ / "events.db"), events_before);
  EXPECT_EQ(DumpDb(data_ / "archive.db"), archive_before);
  EXPECT_EQ(Files(data_), files_before);
  EXPECT_EQ(Integrity(data_ / "events.db"), "ok");
  EXPECT_EQ(crypto::LoadRawKeyFile(data_ / "server.key").id(), data_key_.id())
      << "key file restored with mode 0600 (LoadRawKeyFile checks)";
  EXPECT_FALSE(fs::exists(data_ / ".anju-restore-partial"));

  // The restored store works: snapshots open with the server's key, ingestion goes on.
  EventStore events(data_, data_key_);
  EventQuery q;
  q.limit = 1000;
  int with_snapshot = 0;
  for (auto& e : events.Query(q).items)
    if (e.has_snapshot) {
      EXPECT_EQ(events.Snapshot(e.id).size(), size_t(e.snapshot_bytes));
      ++with_snapshot;
    }
  EXPECT_EQ(with_snapshot, 13);
  EXPECT_EQ(events.Ingest("dev-1", Batch(5, NowMs())).stored.size(), 5u);
}

// Online: a backup taken while a terminal keeps uploading is consistent — the copied
// databases pass the integrity check and every snapshot a copied row names is there.
TEST_F(BackupTest, OnlineBackupWhileIngestingIsConsistent) {
  Populate();
  EventStore events(data_, data_key_);
  std::atomic<bool> stop{false};
  std::atomic<int> batches{0};
  std::thread writer([&] {
    while (!stop) {
      events.Ingest("dev-3", Batch(20, NowMs() - 1000));
      ++batches;
    }
  });
  while (batches < 3) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const BackupInfo made = CreateBackup(data_, archive_, backup_key_);
  const int during = batches;
  stop = true;
  writer.join();
  std::printf("    backup of %lld entries, %lld bytes while %d batches were ingested\n",
              (long long)made.entries.size(), (long long)made.bytes, during);

  const fs::path target = root_ / "restored";
  RestoreBackup(archive_, target, backup_key_);
  EXPECT_EQ(Integrity(target / "events.db"), "ok");
  EventStore copy(target, data_key_);
  EventQuery q;
  q.limit = 1000;
  const auto page = copy.Query(q);
  EXPECT_GE(page.total, 50 + 60);
  for (auto& e : page.items)
    if (e.has_snapshot) {
      EXPECT_NO_THROW(copy.Snapshot(e.id)) << e.id;
    }
}

TEST_F(BackupTest, TamperedTruncatedOrWrongKeyArchivesAreRefused) {
  Populate();
  CreateBackup(data_, archive_, backup_key_);
  std::string good;
  {
    std::ifstream in(archive_, std::ios::binary);
    good.assign((std::istreambuf_iterator<char>(in)), {});
  }
  const fs::path bad = root_ / "bad.anjubak";
  auto write = [&](const std::string& bytes) {
    fs::remove(bad);
    std::ofstream(bad, std::ios::binary) << bytes;
  };
  const fs::path target = root_ / "target";

  EXPECT_EQ(CodeOf([&] { VerifyBackup(archive_, crypto::DataKey::Generate()); }),
            ErrorCode::kCrypto);
  EXPECT_EQ(CodeOf([&] { RestoreBackup(archive_, target, crypto::DataKey::Generate()); }),
            ErrorCode::kCrypto);

  for (size_t at : {size_t(70), good.size() / 3, good.size() / 2, good.size() - 40}) {
    std::string t = good;
    t[at] = char(t[at] ^ 0x01);
    write(t);
    EXPECT_EQ(CodeOf([&] { VerifyBackup(bad, backup_key_); }), ErrorCode::kCrypto) << at;
  }
  // Header bytes are authenticated as well (archive id is part of every record's AAD).
  {
    std::string t = good;
    t[25] = char(t[25] ^ 0x80);
    write(t);
    EXPECT_EQ(CodeOf([&] { VerifyBackup(bad, backup_key_); }), ErrorCode::kCrypto);
  }
  for (size_t len :
       {size_t(0), size_t(10), size_t(64), size_t(66), good.size() / 2, good.size() - 1}) {
    write(good.substr(0, len));
    EXPECT_EQ(CodeOf([&] { VerifyBackup(bad, backup_key_); }), ErrorCode::kCorrupt) << len;
  }
  // Cut exactly at a record boundary (the index record dropped) is still truncation.
  {
    const BackupInfo info = VerifyBackup(archive_, backup_key_);
    // Walk the records to find where the last one starts.
    size_t pos = 64, last = 64;
    while (pos < good.size()) {
      last = pos;
      const auto* p = reinterpret_cast<const uint8_t*>(good.data() + pos);
      pos += 4 + (size_t(p[0]) << 24 | size_t(p[1]) << 16 | size_t(p[2]) << 8 | p[3]);
    }
    ASSERT_EQ(pos, good.size());
    write(good.substr(0, last));
    EXPECT_EQ(CodeOf([&] { VerifyBackup(bad, backup_key_); }), ErrorCode::kCorrupt);
    EXPECT_GT(info.entries.size(), 0u);
  }
  write(good + "x");
  EXPECT_EQ(CodeOf([&] { VerifyBackup(bad, backup_key_); }), ErrorCode::kCorrupt);
  write("hello, not a backup at all, but long enough to have a header of sixty-four bytes...");
  EXPECT_EQ(CodeOf([&] { VerifyBackup(bad, backup_key_); }), ErrorCode::kCorrupt);

  // A failed restore leaves the target as it was (empty), nothing half-written.
  std::string t = good;
  t[good.size() - 40] ^= 0x01;
  write(t);
  EXPECT_EQ(CodeOf([&] { RestoreBackup(bad, target, backup_key_); }), ErrorCode::kCrypto);
  EXPECT_TRUE(fs::is_empty(target));
}

TEST_F(BackupTest, RefusesNonEmptyTargetsExistingOutputsAndOutputsInsideTheData) {
  Populate();
  CreateBackup(data_, archive_, backup_key_);
  EXPECT_EQ(CodeOf([&] { CreateBackup(data_, archive_, backup_key_); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { CreateBackup(data_, data_ / "photos" / "b.anjubak", backup_key_); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { CreateBackup(root_ / "missing", root_ / "x.anjubak", backup_key_); }),
            ErrorCode::kNotFound);
  const auto before = Files(data_);
  EXPECT_EQ(CodeOf([&] { RestoreBackup(archive_, data_, backup_key_); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(Files(data_), before) << "nothing overwritten";
  EXPECT_EQ(CodeOf([&] { RestoreBackup(root_ / "none.anjubak", root_ / "t2", backup_key_); }),
            ErrorCode::kNotFound);
}

}  // namespace
}  // namespace anju::server
