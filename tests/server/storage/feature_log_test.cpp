// The feature change log (PhotoRepo) and IndexSync on top of it (docs/distributed.md, "The
// gallery index"), on a SQLite file and on PostgreSQL 15: two in-memory indexes on one
// archive — as two server processes hold them — stay equal to the stored feature codes.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "backend_test.h"
#include "crypto/envelope.h"
#include "match/index.h"
#include "server/audit/sealing.h"
#include "server/matching/index_sync.h"
#include "server/runtime/runtime.h"
#include "server/storage/archive_schema.h"
#include "server/storage/person_repo.h"
#include "server/storage/photo_repo.h"
#include "testing.h"

namespace anju::server::storage {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* kVersion = "test-model@1";

std::vector<float> Feature(uint32_t seed) {
  return anju::testing::RandomUnitFeature(seed, 512);
}

class FeatureLogTest : public BackendTest {
 protected:
  void SetUp() override {
    Open(
        "archive", [](const fs::path& f) { return OpenArchiveDb(f); },
        [](const std::string& url) { return OpenArchivePostgres(url); });
  }
  static match::IndexOptions Options() {
    match::IndexOptions o;
    o.model_version = kVersion;
    return o;
  }
  int64_t Person(const std::string& code) {
    auto c = db_->Acquire();
    NewPersonRow p;
    p.code = code;
    p.name = code;
    p.now_ms = 1;
    return PersonRepo::Insert(c, p);
  }
  // One feature code of PERSON (CODE), committed; returns its id.
  int64_t Enrol(int64_t person, const std::string& code, uint32_t seed) {
    auto c = db_->Acquire();
    db::Transaction tx(c);
    const auto sealed = SealFeatureAtRest(key_, code, Feature(seed));
    const int64_t id = PhotoRepo::InsertFeature(c, person, std::nullopt, kVersion, sealed, 2);
    tx.Commit();
    return id;
  }
  crypto::DataKey key_ = crypto::DataKey::Generate();
};

TEST_P(FeatureLogTest, AnotherProcessIndexFollowsEnrolmentsAndDeletions) {
  const int64_t p1 = Person("P1"), p2 = Person("P2"), p3 = Person("P3");
  Enrol(p1, "P1", 1);
  Enrol(p2, "P2", 2);
  match::FeatureIndex a(Options()), b(Options());
  IndexSync sync_a(*db_, a, key_, nullptr), sync_b(*db_, b, key_, nullptr);
  sync_a.LoadAll();
  EXPECT_EQ(a.persons(), 2u);
  EXPECT_EQ(sync_a.CatchUp(), 0u);  // nothing after the head it loaded at

  // "Process B" enrols P3 (a second template for P1 too); A catches up.
  Enrol(p3, "P3", 3);
  Enrol(p1, "P1", 4);
  sync_b.LoadAll();
  EXPECT_EQ(b.size(), 4u);
  EXPECT_EQ(sync_a.CatchUp(), 2u);  // P3 and P1 re-read
  EXPECT_EQ(a.persons(), 3u);
  EXPECT_EQ(a.size(), 4u);
  const auto hit = a.Search(Feature(3), kVersion);
  ASSERT_FALSE(hit.empty());
  EXPECT_EQ(hit[0].person, "P3");
  EXPECT_GT(hit[0].score, 0.99f);

  // Deleted on one side, gone on the other.
  {
    auto c = db_->Acquire();
    db::Transaction tx(c);
    PhotoRepo::DeleteBiometrics(c, p1);
    tx.Commit();
  }
  EXPECT_EQ(sync_b.CatchUp(), 1u);
  EXPECT_FALSE(b.Contains("P1"));
  EXPECT_EQ(b.size(), 2u);

  // A transaction rolled back leaves nothing in the log.
  {
    auto c = db_->Acquire();
    db::Transaction tx(c);
    PhotoRepo::InsertFeature(c, p2, std::nullopt, kVersion,
                             SealFeatureAtRest(key_, "P2", Feature(9)), 3);
  }
  EXPECT_EQ(sync_b.CatchUp(), 0u);
  EXPECT_EQ(b.size(), 2u);
  EXPECT_EQ(sync_a.CatchUp(), 1u);
  EXPECT_EQ(a.size(), b.size());
  EXPECT_EQ(sync_a.applied(), sync_b.applied());
}

TEST_P(FeatureLogTest, AProcessAwayLongerThanTheLogReloadsEverything) {
  const int64_t p1 = Person("P1"), p2 = Person("P2");
  Enrol(p1, "P1", 1);
  match::FeatureIndex a(Options());
  IndexSync sync_a(*db_, a, key_, nullptr);
  sync_a.LoadAll();
  Enrol(p2, "P2", 2);
  {
    auto c = db_->Acquire();
    // Everything up to now pruned (as after 7 days), then one more change.
    EXPECT_EQ(PhotoRepo::PruneFeatureLog(c, int64_t(1) << 60), 2);
    EXPECT_EQ(PhotoRepo::FeatureLogBounds(c), (std::pair<int64_t, int64_t>{0, 0}));
  }
  {
    auto c = db_->Acquire();
    db::Transaction tx(c);
    PhotoRepo::DeleteBiometrics(c, p1);
    tx.Commit();
  }
  {
    auto c = db_->Acquire();
    const auto [first, last] = PhotoRepo::FeatureLogBounds(c);
    EXPECT_EQ(first, 3);  // numbers are never reused
    EXPECT_EQ(last, 3);
  }
  sync_a.CatchUp();  // its number (1) is before the log's first (3): a full reload
  EXPECT_FALSE(a.Contains("P1"));
  EXPECT_TRUE(a.Contains("P2"));
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(sync_a.applied(), 3);
}

TEST_P(FeatureLogTest, AnAnnouncedChangeReachesARunningSyncAtOnce) {
  const int64_t p1 = Person("P1");
  auto runtime = runtime::Runtime::Embedded();
  match::FeatureIndex a(Options()), b(Options());
  IndexSyncOptions slow;
  slow.poll = std::chrono::hours(1);  // only the announcement can wake it
  IndexSync sync_a(*db_, a, key_, runtime.notifier.get(), slow);
  IndexSync sync_b(*db_, b, key_, runtime.notifier.get(), slow);
  sync_a.LoadAll();
  sync_b.LoadAll();
  sync_a.Start();
  sync_b.Start();
  {
    auto c = db_->Acquire();
    db::Transaction tx(c);
    PhotoRepo::InsertFeature(c, p1, std::nullopt, kVersion,
                             SealFeatureAtRest(key_, "P1", Feature(1)), 2);
    sync_a.Announce(c);  // sent once the transaction has committed
    tx.Commit();
  }
  for (int i = 0; i < 100 && !b.Contains("P1"); ++i) std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(b.Contains("P1"));
  sync_a.Stop();
  sync_b.Stop();
}

INSTANTIATE_TEST_SUITE_P(Backends, FeatureLogTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace anju::server::storage
