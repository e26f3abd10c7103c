// The BlobStore contract (server/runtime/blob_store.h) on both stores: FileBlobStore on a
// temporary directory and PostgresBlobStore on a fresh database of the shared throwaway
// PostgreSQL 15 (R3.3.2.5). Then what only the PostgreSQL store has: monthly partitions.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backend_test.h"
#include "core/error.h"
#include "db/postgres.h"
#include "server/runtime/embedded.h"
#include "server/storage/postgres_blob_store.h"
#include "testing.h"

namespace anju::server::storage {
namespace {

namespace fs = std::filesystem;

std::vector<uint8_t> Bytes(const std::string& s) {
  return {s.begin(), s.end()};
}

std::span<const uint8_t> Span(const std::vector<uint8_t>& v) {
  return {v.data(), v.size()};
}

class BlobStoreTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "postgres") {
      if (auto why = db::LocalPostgres::Unavailable(); !why.empty())
        GTEST_SKIP() << "PostgreSQL tests skipped: " << why;
      url_ = SharedPostgres().CreateDatabase();
      auto s = OpenPostgresBlobStore(url_);
      pg_ = s.get();
      store_ = std::move(s);
    } else {
      dir_ = anju::testing::TempDir(
          std::string("blobs-") + ::testing::UnitTest::GetInstance()->current_test_info()->name());
      store_ = std::make_unique<runtime::FileBlobStore>(dir_);
    }
  }
  void TearDown() override {
    store_.reset();
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  std::vector<std::string> ListAll(const std::string& prefix) {
    std::vector<std::string> keys;
    store_->List(prefix, [&](const std::string& k) {
      keys.push_back(k);
      return true;
    });
    std::sort(keys.begin(), keys.end());
    return keys;
  }

  fs::path dir_;
  std::string url_;
  std::unique_ptr<runtime::BlobStore> store_;
  PostgresBlobStore* pg_ = nullptr;
};

TEST_P(BlobStoreTest, PutGetOverwriteSizeRemove) {
  const std::string key = "snapshots/2026/12/06/e1.jpg.sealed";
  EXPECT_FALSE(store_->Exists(key));
  EXPECT_EQ(store_->Size(key), std::nullopt);
  const auto first = Bytes("first sealed bytes");
  store_->Put(key, Span(first));
  EXPECT_TRUE(store_->Exists(key));
  EXPECT_EQ(store_->Get(key), first);
  EXPECT_EQ(store_->Size(key), int64_t(first.size()));
  // Overwritten with something shorter: the old bytes are gone, not just shadowed.
  const auto second = Bytes("2nd");
  store_->Put(key, Span(second));
  EXPECT_EQ(store_->Get(key), second);
  EXPECT_EQ(store_->Size(key), 3);
  EXPECT_EQ(ListAll(""), std::vector<std::string>{key});
  // Undated keys (enrolment photos) and empty blobs.
  const std::string photo = "photos/P-1/ab12.jpg.sealed";
  store_->Put(photo, {});
  EXPECT_TRUE(store_->Exists(photo));
  EXPECT_EQ(store_->Size(photo), 0);
  EXPECT_TRUE(store_->Get(photo).empty());
  // Binary content comes back byte for byte.
  std::vector<uint8_t> all(256 * 3);
  for (size_t i = 0; i < all.size(); ++i) all[i] = uint8_t(i);
  store_->Put(photo, Span(all));
  EXPECT_EQ(store_->Get(photo), all);

  EXPECT_TRUE(store_->Remove(key));
  EXPECT_FALSE(store_->Remove(key));
  EXPECT_FALSE(store_->Exists(key));
  EXPECT_EQ(store_->Size(key), std::nullopt);
  EXPECT_EQ(ListAll(""), std::vector<std::string>{photo});
}

TEST_P(BlobStoreTest, AMissingKeyIsNotFound) {
  try {
    store_->Get("snapshots/2026/12/06/missing.jpg.sealed");
    FAIL() << "a missing blob was read";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound) << e.what();
  }
  EXPECT_THROW(store_->Get("photos/nobody/x.jpg.sealed"), Error);
  EXPECT_FALSE(store_->Remove("photos/nobody/x.jpg.sealed"));
  EXPECT_TRUE(ListAll("photos").empty());
  EXPECT_TRUE(ListAll("no/such/dir/").empty());
}

TEST_P(BlobStoreTest, KeysThatLeaveTheStoreAreRefused) {
  const auto b = Bytes("x");
  for (const std::string key : {"", "/etc/passwd", "../outside", "a/../../outside"}) {
    try {
      store_->Put(key, Span(b));
      ADD_FAILURE() << "key \"" << key << "\" was taken";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << key << ": " << e.what();
    }
  }
}

TEST_P(BlobStoreTest, ListIsByDirectoryAndTakesPercentAndUnderscoreLiterally) {
  const auto b = Bytes("b");
  const std::vector<std::string> keys = {"captures/2026/11/30/c1-face.jpg.sealed",
                                         "captures/2026/12/01/c2-face.jpg.sealed",
                                         "photos/a%b/1.jpg.sealed",
                                         "photos/a_b/2.jpg.sealed",
                                         "photos/axb/3.jpg.sealed",
                                         "photos/aab/4.jpg.sealed",
                                         "photos/a%b0/5.jpg.sealed",
                                         "snapshots/2026/12/06/e1.jpg.sealed",
                                         "snapshots/2026/12/07/e2.jpg.sealed",
                                         "snapshots/2026/12/07/e2.jpg.sealed.x"};
  std::vector<std::pair<std::string, std::span<const uint8_t>>> batch;
  for (const auto& k : keys) batch.emplace_back(k, Span(b));
  store_->PutMany(batch);
  EXPECT_EQ(ListAll("photos/a%b"), std::vector<std::string>{"photos/a%b/1.jpg.sealed"});
  EXPECT_EQ(ListAll("photos/a_b/"), std::vector<std::string>{"photos/a_b/2.jpg.sealed"});
  EXPECT_EQ(ListAll("photos").size(), 5u);
  EXPECT_EQ(ListAll("snapshots/2026/12/"),
            (std::vector<std::string>{"snapshots/2026/12/06/e1.jpg.sealed",
                                      "snapshots/2026/12/07/e2.jpg.sealed",
                                      "snapshots/2026/12/07/e2.jpg.sealed.x"}));
  EXPECT_EQ(ListAll("snapshots/2026/12/07"),
            (std::vector<std::string>{"snapshots/2026/12/07/e2.jpg.sealed",
                                      "snapshots/2026/12/07/e2.jpg.sealed.x"}));
  EXPECT_TRUE(ListAll("snapshots/2026/1").empty()) << "a prefix names a directory, not a start";
  EXPECT_EQ(ListAll("captures/2026/11/"),
            std::vector<std::string>{"captures/2026/11/30/c1-face.jpg.sealed"});
  auto sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(ListAll(""), sorted);
  // FN returning false stops the listing.
  int seen = 0;
  store_->List("", [&](const std::string&) { return ++seen < 3; });
  EXPECT_EQ(seen, 3);
}

TEST_P(BlobStoreTest, ListingManyKeysSeesEachOnce) {
  // More than one page of the PostgreSQL store's listing.
  const auto b = Bytes("b");
  std::vector<std::string> keys;
  for (int i = 0; i < 2500; ++i) keys.push_back("snapshots/2026/12/06/e" + std::to_string(i));
  std::vector<std::pair<std::string, std::span<const uint8_t>>> batch;
  for (const auto& k : keys) batch.emplace_back(k, Span(b));
  store_->PutMany(batch);
  auto got = ListAll("snapshots/2026/12/06");
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(got, keys);
}

TEST_P(BlobStoreTest, ABatchIsStoredWholeOrNotAtAll) {
  const auto b = Bytes("batch");
  if (GetParam() != "postgres")
    GTEST_SKIP() << "a file store writes file by file (a failed batch can leave some files, "
                    "which no row names: retention's orphan sweep takes them)";
  // The third key is refused: nothing of the batch is stored.
  std::vector<std::pair<std::string, std::span<const uint8_t>>> batch = {
      {"snapshots/2026/12/06/a", Span(b)}, {"photos/P/b", Span(b)}, {"../escape", Span(b)}};
  EXPECT_THROW(store_->PutMany(batch), Error);
  EXPECT_TRUE(ListAll("").empty());
  // A failure inside the transaction (a key PostgreSQL refuses: invalid UTF-8) also
  // takes back the rows written before it.
  batch[2] = {"snapshots/2026/12/06/\xff\xfe", Span(b)};
  EXPECT_THROW(store_->PutMany(batch), Error);
  EXPECT_TRUE(ListAll("").empty());
  EXPECT_FALSE(store_->Exists("snapshots/2026/12/06/a"));
  batch.pop_back();
  store_->PutMany(batch);
  EXPECT_EQ(ListAll("").size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Stores, BlobStoreTest, ::testing::Values("files", "postgres"),
                         [](const auto& info) { return info.param; });

// ---- PostgreSQL only ---------------------------------------------------------------------

TEST(PostgresBlobStoreTest, MonthIsTheKeysDateElseUndated) {
  EXPECT_EQ(PostgresBlobStore::MonthOf("snapshots/2026/12/06/e.jpg.sealed"), "2026-12-01");
  EXPECT_EQ(PostgresBlobStore::MonthOf("captures/2025/01/31/c-face.jpg.sealed"), "2025-01-01");
  EXPECT_EQ(PostgresBlobStore::MonthOf("photos/P-1/ab.jpg.sealed"), "0001-01-01");
  // A date must be three directories above a file.
  EXPECT_EQ(PostgresBlobStore::MonthOf("x/2026/12/06"), "0001-01-01");
  EXPECT_EQ(PostgresBlobStore::MonthOf("x/2026/13/06/f"), "0001-01-01");
  EXPECT_EQ(PostgresBlobStore::MonthOf("x/26/12/06/f"), "0001-01-01");
}

class PostgresBlobStoreDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = db::LocalPostgres::Unavailable(); !why.empty())
      GTEST_SKIP() << "PostgreSQL tests skipped: " << why;
    url_ = SharedPostgres().CreateDatabase();
    store_ = OpenPostgresBlobStore(url_);
  }
  // Rows per partition of the blob table.
  std::map<std::string, int64_t> RowsByPartition() {
    auto c = store_->database().Acquire();
    db::Stmt s(c, "SELECT tableoid::regclass::text, count(*) FROM blob GROUP BY 1");
    std::map<std::string, int64_t> out;
    while (s.Step()) out[s.Text(0)] = s.Int(1);
    return out;
  }
  std::string url_;
  std::unique_ptr<PostgresBlobStore> store_;
};

TEST_F(PostgresBlobStoreDbTest, BlobsGoIntoThePartitionOfTheirMonth) {
  const auto b = Bytes("sealed");
  store_->PutMany({{"snapshots/2024/02/29/a", Span(b)},
                   {"snapshots/2024/02/01/b", Span(b)},
                   {"captures/2024/03/01/c", Span(b)},
                   {"photos/P/d", Span(b)}});
  const auto parts = store_->MonthPartitions();
  for (const char* p : {"blob_y2024m02", "blob_y2024m03", "blob_y2024m04"})
    EXPECT_NE(std::find(parts.begin(), parts.end(), p), parts.end()) << p << " missing";
  const auto rows = RowsByPartition();
  EXPECT_EQ(rows.at("blob_y2024m02"), 2);
  EXPECT_EQ(rows.at("blob_y2024m03"), 1);
  EXPECT_EQ(rows.at("blob_undated"), 1);
  EXPECT_EQ(rows.count("blob_default"), 0u) << "the DEFAULT partition stays empty";
  // The current month and the next were made when the store opened.
  EXPECT_GE(parts.size(), 5u);
  // A lookup by key reads one partition (the key names its month).
  auto c = store_->database().Acquire();
  db::Stmt s(c,
             "EXPLAIN SELECT bytes FROM blob WHERE key = 'snapshots/2024/02/29/a' "
             "AND month = '2024-02-01'");
  std::string plan;
  while (s.Step()) plan += s.Text(0) + "\n";
  EXPECT_NE(plan.find("blob_y2024m02"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("blob_y2024m03"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("blob_undated"), std::string::npos) << plan;
}

TEST_F(PostgresBlobStoreDbTest, ServersSharingTheDatabaseCreatePartitionsOnce) {
  // Four stores (as four servers) put into the same new months at once.
  std::vector<std::unique_ptr<PostgresBlobStore>> stores;
  for (int i = 0; i < 4; ++i) stores.push_back(OpenPostgresBlobStore(url_));
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      const auto b = Bytes("x" + std::to_string(i));
      try {
        for (int m = 1; m <= 12; ++m) {
          char key[64];
          std::snprintf(key, sizeof key, "snapshots/2023/%02d/01/s%d", m, i);
          stores[size_t(i)]->Put(key, Span(b));
        }
      } catch (const Error& e) {
        ADD_FAILURE() << e.what();
        ++failures;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  int n = 0;
  store_->List("snapshots/2023", [&](const std::string&) { return ++n, true; });
  EXPECT_EQ(n, 48);
  const auto parts = store_->MonthPartitions();
  EXPECT_EQ(std::count_if(parts.begin(), parts.end(),
                          [](const std::string& p) { return p.starts_with("blob_y2023"); }),
            12);
}

TEST_F(PostgresBlobStoreDbTest, AnUnreachableDatabaseIsUnavailable) {
  db::LocalPostgres other;
  const std::string url = other.CreateDatabase();
  auto store = OpenPostgresBlobStore(url);
  const auto b = Bytes("x");
  store->Put("photos/P/x", Span(b));
  other.Kill();
  try {
    store->Put("photos/P/y", Span(b));
    FAIL() << "a put into a stopped server succeeded";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnavailable) << e.what();
    EXPECT_NE(std::string(e.what()).find("blobs"), std::string::npos) << e.what();
  }
  try {
    OpenPostgresBlobStore("sqlite:blobs.db");
    FAIL() << "a non-PostgreSQL URL was taken";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument) << e.what();
  }
}

}  // namespace
}  // namespace anju::server::storage
