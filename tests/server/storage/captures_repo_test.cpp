// The snapshot service's repositories (storage/capture_repo, stranger_repo, viid_camera_repo,
// alert_repo, forward_repo) on both backends of the database seam: a real SQLite file and a
// real PostgreSQL 15 the test starts itself (db/local_postgres.h), with the migrations of
// each dialect (storage/captures_schema.h). Distributed workers finish captures on
// PostgreSQL (docs/distributed.md), so what matters most is that a capture is taken once
// per camera face and finished once, whichever worker gets there first.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "backend_test.h"
#include "core/clock.h"
#include "db/db.h"
#include "db/postgres.h"
#include "server/retention/retention.h"
#include "server/storage/alert_repo.h"
#include "server/storage/capture_repo.h"
#include "server/storage/captures_schema.h"
#include "server/storage/databases.h"
#include "server/storage/forward_repo.h"
#include "server/storage/partitions.h"
#include "server/storage/stranger_repo.h"
#include "server/storage/viid_camera_repo.h"
#include "testing.h"

namespace anju::server::storage {
namespace {

namespace fs = std::filesystem;

class CapturesRepoTest : public BackendTest {
 protected:
  void SetUp() override {
    Open(
        "captures", [](const fs::path& f) { return OpenCapturesDb(f); },
        [](const std::string& url) {
          db::PostgresOptions o;
          o.name = "captures";
          return db::OpenPostgres(url, CapturesMigrations(), o);
        });
  }
  NewCapture Capture(const std::string& id, const std::string& face, int64_t time_ms) {
    return {id, "CAM-1", face, time_ms, time_ms + 5, "[1,2,3,4]", 2};
  }
};

TEST_P(CapturesRepoTest, ACameraFaceIsTakenOnceAndItsFaceImageIsPreferred) {
  auto c = db_->Acquire();
  EXPECT_TRUE(CaptureRepo::Insert(c, Capture("c1", "F-1", 1000)));
  EXPECT_FALSE(CaptureRepo::Insert(c, Capture("c2", "F-1", 1001))) << "same camera face twice";
  EXPECT_TRUE(CaptureRepo::Insert(c, Capture("c3", "F-2", 1002)));
  EXPECT_TRUE(CaptureRepo::HasFace(c, "CAM-1", "F-1"));
  EXPECT_FALSE(CaptureRepo::HasFace(c, "CAM-1", "F-9"));
  EXPECT_EQ(CaptureRepo::Queued(c), (std::vector<std::string>{"c1", "c3"}));

  CaptureFileRow scene{0, "14", 0, "captures/x/c1-0.jpg.sealed", 500, 640, 480};
  CaptureFileRow face{1, "11", 0, "captures/x/c1-1.jpg.sealed", 100, 112, 112};
  CaptureRepo::InsertImage(c, "c1", scene);
  CaptureRepo::InsertImage(c, "c1", face);
  const auto best = CaptureRepo::BestImage(c, "c1");
  ASSERT_TRUE(best);
  EXPECT_EQ(best->n, 1);
  EXPECT_EQ(best->file, face.file);
  EXPECT_EQ(CaptureRepo::ImageFile(c, "c1", 0), scene.file);
  const auto head = CaptureRepo::Head(c, "c1");
  ASSERT_TRUE(head);
  EXPECT_EQ(head->state, "queued");
  EXPECT_EQ(head->time_ms, 1000);
}

TEST_P(CapturesRepoTest, ACaptureIsFinishedOnceWhicheverWorkerComesFirst) {
  auto c = db_->Acquire();
  ASSERT_TRUE(CaptureRepo::Insert(c, Capture("c1", "F-1", 1000)));
  CaptureResult first{"done", "accept", "P-1",     0.71, 0.40, std::nullopt, "{\"score\":0.9}",
                      "[]",   true,     {1, 2, 3}, 2000};
  EXPECT_TRUE(CaptureRepo::SaveResult(c, "c1", first));
  // A redelivered work item, done again by another worker: not saved over the first.
  CaptureResult second = first;
  second.outcome = "stranger";
  second.person = "";
  second.stranger_id = 7;
  EXPECT_FALSE(CaptureRepo::SaveResult(c, "c1", second));
  EXPECT_FALSE(CaptureRepo::MarkFailed(c, "c1", "[\"late failure\"]", 3000));
  const auto row = CaptureRepo::Get(c, "c1");
  ASSERT_TRUE(row);
  EXPECT_EQ(row->state, "done");
  EXPECT_EQ(row->outcome, "accept");
  EXPECT_EQ(row->person, "P-1");
  ASSERT_TRUE(row->score);
  EXPECT_DOUBLE_EQ(*row->score, 0.71);
  EXPECT_FALSE(row->stranger_id);
  EXPECT_TRUE(row->dark);
  EXPECT_EQ(row->recognised_ms, 2000);
  EXPECT_TRUE(CaptureRepo::Queued(c).empty());

  // A capture that failed is final too.
  ASSERT_TRUE(CaptureRepo::Insert(c, Capture("c2", "F-2", 1000)));
  EXPECT_TRUE(CaptureRepo::MarkFailed(c, "c2", "[\"bad_image\"]", 3000));
  EXPECT_FALSE(CaptureRepo::SaveResult(c, "c2", first));
  EXPECT_EQ(CaptureRepo::Get(c, "c2")->state, "failed");
}

TEST_P(CapturesRepoTest, StrangerIdsComeFromOneCounterOnEveryConnection) {
  // Each lease stands for a worker drawing an id: ids never repeat, they only grow, and a
  // cluster stored under an id does not disturb the counter.
  std::vector<int64_t> ids;
  for (int i = 0; i < 4; ++i) {
    auto c = db_->Acquire();
    ids.push_back(StrangerRepo::NextId(c));
    if (i == 1) StrangerRepo::Upsert(c, {ids.back(), {1}, 1, 1000, "c", "CAM-1"});
  }
  EXPECT_EQ(ids, (std::vector<int64_t>{1, 2, 3, 4}));
}

TEST_P(CapturesRepoTest, StrangerClustersKeepTheirFirstAndLastSighting) {
  auto c = db_->Acquire();
  for (const auto& [id, t] :
       std::vector<std::pair<std::string, int64_t>>{{"s1", 5000}, {"s2", 3000}, {"s3", 9000}}) {
    ASSERT_TRUE(CaptureRepo::Insert(c, Capture(id, "F-" + id, t)));
    CaptureResult r{"done", "stranger", "", std::nullopt, std::nullopt, 4, "{}", "[]",
                    false,  {},         t};
    ASSERT_TRUE(CaptureRepo::SaveResult(c, id, r));
    StrangerRepo::Upsert(c, {4, {9, 9}, 1, t, id, "CAM-1"});
  }
  ASSERT_EQ(StrangerRepo::Centroids(c).size(), 1u);
  EXPECT_EQ(StrangerRepo::Centroids(c)[0].id, 4);
  EXPECT_TRUE(StrangerRepo::Centroids(c, 4).empty());  // only those above an id
  const auto row = StrangerRepo::Get(c, 4, std::nullopt);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->first_ms, 3000);
  EXPECT_EQ(row->last_ms, 9000);
  EXPECT_EQ(row->last_capture, "s3");

  StrangerRepo::LinkTenant(c, "P-1", 4, 5000, "s1");
  StrangerRepo::LinkTenant(c, "P-1", 4, 5000, "s1");  // once
  EXPECT_EQ(StrangerRepo::StrangersLetInBy(c, "P-1", 0), (std::vector<int64_t>{4}));
  EXPECT_EQ(StrangerRepo::DeleteIdle(c, 10000), (std::vector<int64_t>{4}));
  EXPECT_TRUE(StrangerRepo::Centroids(c).empty());
}

TEST_P(CapturesRepoTest, AClusterGrowsOnlyFromTheMemberCountItWasRead) {
  // Two workers read cluster 7 at 2 members; the first growth wins, the second finds the
  // count moved on and must read again.
  auto c = db_->Acquire();
  StrangerRepo::Upsert(c, {7, {1, 1}, 2, 1000, "a", "CAM-1"});
  EXPECT_TRUE(StrangerRepo::Grow(c, {7, {2, 2}, 3, 2000, "b", "CAM-2"}, 2));
  EXPECT_FALSE(StrangerRepo::Grow(c, {7, {3, 3}, 3, 3000, "c", "CAM-3"}, 2));
  auto row = StrangerRepo::Centroid(c, 7);
  ASSERT_TRUE(row);
  EXPECT_EQ(row->members, 3);
  EXPECT_EQ(row->centroid_sealed, (std::vector<uint8_t>{2, 2}));
  EXPECT_TRUE(StrangerRepo::Grow(c, {7, {4, 4}, 4, 1500, "d", "CAM-3"}, 3));
  const auto s = StrangerRepo::Get(c, 7, std::nullopt);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->last_ms, 2000);  // an older sighting does not move the last time back
  EXPECT_FALSE(StrangerRepo::Centroid(c, 8));
  EXPECT_FALSE(StrangerRepo::Grow(c, {8, {1}, 2, 1000, "e", "CAM-1"}, 1));  // no such cluster
}

TEST_P(CapturesRepoTest, RetentionDeletesOldestFirstAndNamesTheirFiles) {
  auto c = db_->Acquire();
  for (int i = 0; i < 4; ++i) {
    const std::string id = "c" + std::to_string(i);
    ASSERT_TRUE(CaptureRepo::Insert(c, Capture(id, "F-" + id, 1000 * (4 - i))));
    CaptureRepo::InsertImage(c, id, {0, "11", 0, "captures/" + id + "-0.jpg.sealed", 1, 1, 1});
  }
  CaptureRepo::InsertClipFrame(c, "c3", {0, "", 40, "captures/c3-clip0.jpg.sealed", 1, 1, 1});
  EXPECT_EQ(CaptureRepo::ClipFrameCount(c, "c3"), 1);
  const auto old = CaptureRepo::OlderThan(c, 2500, 10);
  EXPECT_EQ(old, (std::vector<std::string>{"c3", "c2"}));
  EXPECT_EQ(CaptureRepo::Delete(c, "c3"),
            (std::vector<std::string>{"captures/c3-0.jpg.sealed", "captures/c3-clip0.jpg.sealed"}));
  EXPECT_FALSE(CaptureRepo::Exists(c, "c3"));
  EXPECT_EQ(CaptureRepo::Count(c, {}), 3);
  // Buckets of one second.
  int64_t total = 0;
  for (const auto& b : CaptureRepo::CountByBucket(c, 0, 1000, 0, 10'000)) {
    EXPECT_EQ(b.bucket_ms % 1000, 0);
    total += b.count;
  }
  EXPECT_EQ(total, 3);
}

TEST_P(CapturesRepoTest, CamerasRulesSettingsAndOutboxes) {
  auto c = db_->Acquire();
  ViidCameraRow cam;
  cam.id = "CAM-1";
  cam.name = "gate";
  cam.place = "3号楼";
  cam.building_id = 3;
  cam.created_ms = 100;
  ViidCameraRepo::Insert(c, cam, "anju-viid", {1, 2, 3});
  ViidCameraRepo::SetRegistered(c, "CAM-1", 200);
  auto got = ViidCameraRepo::Get(c, "CAM-1");
  ASSERT_TRUE(got);
  EXPECT_TRUE(got->registered);
  EXPECT_EQ(got->building_id, 3);
  ViidCameraRepo::UnregisterAll(c);
  EXPECT_FALSE(ViidCameraRepo::Get(c, "CAM-1")->registered);
  EXPECT_TRUE(ViidCameraRepo::Revoke(c, "CAM-1"));
  EXPECT_EQ(ViidCameraRepo::Credentials(c, "CAM-1")->ha1_sealed, (std::vector<uint8_t>{1, 2, 3}));

  const int64_t rule = AlertRepo::InsertRule(c, {0, "blacklist", "watch", true, "{}", 100});
  EXPECT_GT(rule, 0);
  EXPECT_EQ(AlertRepo::InsertRule(c, {0, "blacklist", "watch 2", false, "{}", 100}), rule + 1);
  AlertRepo::SetRaised(c, "k", 10);
  AlertRepo::SetRaised(c, "k", 20);
  EXPECT_EQ(AlertRepo::LastRaised(c, "k"), 20);

  ForwardRepo::AddSetting(c, "cursor", "5");
  ForwardRepo::AddSetting(c, "cursor", "9");  // only when absent
  EXPECT_EQ(ForwardRepo::Setting(c, "cursor"), "5");
  ForwardRepo::PutSetting(c, "cursor", "9");
  EXPECT_EQ(ForwardRepo::Setting(c, "cursor"), "9");

  ForwardRepo::EnqueueWebhook(c, "{\"a\":1}", 100);
  ForwardRepo::EnqueueWebhook(c, "{\"a\":2}", 100);
  auto due = ForwardRepo::Due(c, Outbox::kWebhook, 200, 10);
  ASSERT_EQ(due.size(), 2u);
  EXPECT_LT(due[0].seq, due[1].seq);
  ForwardRepo::Sent(c, Outbox::kWebhook, due[0].seq);
  ForwardRepo::Failed(c, Outbox::kWebhook, due[1].seq, 200, "down");
  EXPECT_EQ(ForwardRepo::State(c, Outbox::kWebhook).pending, 1);
  // A failed item waits 1 s after its first failure, doubling, at most 5 minutes.
  EXPECT_TRUE(ForwardRepo::Due(c, Outbox::kWebhook, 1199, 10).empty());
  EXPECT_EQ(ForwardRepo::Due(c, Outbox::kWebhook, 1200, 10).size(), 1u);
  for (int i = 0; i < 12; ++i) ForwardRepo::Failed(c, Outbox::kWebhook, due[1].seq, 0, "down");
  EXPECT_TRUE(ForwardRepo::Due(c, Outbox::kWebhook, 299'999, 10).empty());
  EXPECT_EQ(ForwardRepo::Due(c, Outbox::kWebhook, 300'000, 10).size(), 1u);
}

TEST_P(CapturesRepoTest, AnUploadSentAgainIsADuplicateWhateverTimeItGets) {
  // A capture without a usable camera time takes its arrival time: a copy sent again later
  // has another time (on PostgreSQL another month, another partition), and is still the
  // same camera face (R3.3.2.5 kept the guarantee: captures_schema.cpp, step 5).
  const int64_t now = NowMs();
  {
    auto c = db_->Acquire();
    EXPECT_TRUE(CaptureRepo::Insert(c, Capture("c1", "F-1", now)));
    EXPECT_FALSE(CaptureRepo::Insert(c, Capture("c2", "F-1", now - 40LL * 86400000)));
    EXPECT_FALSE(CaptureRepo::Insert(c, Capture("c3", "F-1", 1000)));
  }
  // Two servers taking the same uploads at once, each with its own clock reading.
  std::atomic<int> taken{0};
  auto server = [&](int k) {
    for (int i = 0; i < 30; ++i) {
      auto c = db_->Acquire();
      db::Transaction tx(c);
      if (CaptureRepo::Insert(c, Capture("s" + std::to_string(k) + "-" + std::to_string(i),
                                         "G-" + std::to_string(i), now - k * 45LL * 86400000)))
        ++taken;
      tx.Commit();
    }
  };
  std::thread a(server, 0), b(server, 1);
  a.join();
  b.join();
  EXPECT_EQ(taken.load(), 30);
  auto c = db_->Acquire();
  EXPECT_EQ(CaptureRepo::Count(c, {}), 31);
  EXPECT_TRUE(CaptureRepo::HasFace(c, "CAM-1", "G-29"));
}

INSTANTIATE_TEST_SUITE_P(Backends, CapturesRepoTest, ::testing::Values("sqlite", "postgres"),
                         [](const auto& info) { return info.param; });

// ---- monthly partitions (PostgreSQL only; storage/partitions.h) ---------------------------

class CapturePartitionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = db::LocalPostgres::Unavailable(); !why.empty())
      GTEST_SKIP() << "PostgreSQL tests skipped: " << why;
    url_ = SharedPostgres().CreateDatabase();
    dir_ = anju::testing::TempDir("capture-partitions");
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  static std::string PartitionOf(db::Conn& c, const std::string& sql, const std::string& id) {
    db::Stmt s(c, sql);
    s.Bind(1, id);
    if (!s.Step()) return "";
    std::string name = s.Text(0);
    if (auto dot = name.rfind('.'); dot != std::string::npos) name = name.substr(dot + 1);
    return name;
  }
  static void Add(db::Conn& c, const std::string& id, const std::string& face, int64_t t) {
    db::Transaction tx(c);
    ASSERT_TRUE(CaptureRepo::Insert(c, {id, "CAM-1", face, t, t + 5, "[1,2,3,4]", 1}));
    CaptureRepo::InsertImage(c, id, {0, "11", 0, "captures/" + id + "-0.jpg.sealed", 1, 1, 1});
    CaptureRepo::InsertClipFrame(c, id,
                                 {0, "", 40, "captures/" + id + "-clip0.jpg.sealed", 1, 1, 1});
    tx.Commit();
  }
  static bool Has(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  }
  std::string url_;
  fs::path dir_;
  const int64_t now_ = NowMs();
};

TEST_F(CapturePartitionsTest, MigrationKeepsEveryRowInItsMonthAndTheFaceKey) {
  const int64_t t2 = MonthOf(now_).from_ms - 20LL * 86400000;  // last month
  {
    db::Migrations v4 = CapturesMigrations();
    v4.postgres.resize(4);
    db::PostgresOptions o;
    o.name = "captures";
    o.schema = "captures";
    auto db = db::OpenPostgres(url_, v4, o);
    ASSERT_EQ(db->schema_version(), 4);
    auto c = db->Acquire();
    // The version-4 statements: a unique (device_id, face_id) on captures itself.
    for (const auto& [id, t] :
         std::vector<std::pair<std::string, int64_t>>{{"old", t2}, {"new", now_}, {"odd", 1000}}) {
      db::Stmt s(c,
                 "INSERT INTO captures(id, device_id, face_id, time_ms, received_ms, box, images, "
                 "state) VALUES(?, 'CAM-1', ?, ?, ?, '[]', 1, 'queued')");
      s.Bind(1, id).Bind(2, "F-" + id).Bind(3, t).Bind(4, t).Run();
      db::Stmt i(c,
                 "INSERT INTO capture_images(capture_id, n, type, file, bytes, width, height) "
                 "VALUES(?, 0, '11', ?, 1, 1, 1)");
      i.Bind(1, id).Bind(2, "captures/" + id).Run();
    }
  }
  auto db = OpenCapturesAt(url_, dir_);
  ASSERT_EQ(db->schema_version(), int(CapturesMigrations().postgres.size()));
  auto c = db->Acquire();
  EXPECT_EQ(CaptureRepo::Count(c, {}), 3);
  EXPECT_EQ(PartitionOf(c, "SELECT tableoid::regclass::text FROM captures WHERE id = ?", "old"),
            "captures_" + MonthOf(t2).suffix);
  EXPECT_EQ(PartitionOf(c, "SELECT tableoid::regclass::text FROM captures WHERE id = ?", "new"),
            "captures_" + MonthOf(now_).suffix);
  EXPECT_EQ(PartitionOf(c, "SELECT tableoid::regclass::text FROM captures WHERE id = ?", "odd"),
            "captures_default");
  EXPECT_EQ(
      PartitionOf(c, "SELECT tableoid::regclass::text FROM capture_images WHERE capture_id = ?",
                  "old"),
      "capture_images_" + MonthOf(t2).suffix);
  EXPECT_EQ(CaptureRepo::ImageFile(c, "old", 0), "captures/old");
  EXPECT_EQ(CaptureRepo::Head(c, "old")->time_ms, t2);
  // A face stored before the migration is still a duplicate after it.
  EXPECT_TRUE(CaptureRepo::HasFace(c, "CAM-1", "F-old"));
  EXPECT_FALSE(CaptureRepo::Insert(c, {"again", "CAM-1", "F-old", now_, now_, "[]", 1}));
  EXPECT_EQ(CaptureRepo::Count(c, {}), 3);
}

TEST_F(CapturePartitionsTest, RetentionDropsWholeMonthsAndNamesTheirFiles) {
  auto db = OpenCapturesAt(url_, dir_);
  auto c = db->Acquire();
  const Month m14 = MonthOf(MonthsBefore(now_, 14));
  CaptureRepo::EnsurePartitions(c, m14.from_ms);  // -14 .. -12
  const auto parts = Partitions(c, "captures");
  ASSERT_TRUE(Has(parts, "captures_" + m14.suffix));
  ASSERT_TRUE(Has(parts, "captures_" + MonthOf(now_).suffix));
  Add(c, "a", "F-a", m14.from_ms + 3600000);
  Add(c, "b", "F-b", m14.to_ms - 1);
  Add(c, "n", "F-n", now_);
  const int64_t cutoff = MonthsBefore(now_, 12);

  db::Transaction tx(c);
  auto month = CaptureRepo::DropMonthBefore(c, cutoff);
  ASSERT_TRUE(month);
  EXPECT_EQ(month->month.suffix, m14.suffix);
  EXPECT_EQ(month->ids, (std::vector<std::string>{"a", "b"}));
  std::sort(month->files.begin(), month->files.end());
  EXPECT_EQ(month->files,
            (std::vector<std::string>{"captures/a-0.jpg.sealed", "captures/a-clip0.jpg.sealed",
                                      "captures/b-0.jpg.sealed", "captures/b-clip0.jpg.sealed"}));
  // Every month wholly before the cutoff goes; the one holding it stays.
  int more = 0;
  while (CaptureRepo::DropMonthBefore(c, cutoff)) ++more;
  tx.Commit();
  EXPECT_GE(more, 1);
  for (const auto& table : CaptureRepo::PartitionedTables()) {
    const auto now_parts = Partitions(c, table);
    EXPECT_FALSE(Has(now_parts, table + "_" + m14.suffix)) << table;
    EXPECT_TRUE(Has(now_parts, table + "_" + MonthOf(now_).suffix)) << table;
    EXPECT_TRUE(Has(now_parts, table + "_" + MonthOf(cutoff).suffix)) << table;
  }
  EXPECT_FALSE(CaptureRepo::Exists(c, "a"));
  EXPECT_TRUE(CaptureRepo::Exists(c, "n"));
  EXPECT_EQ(CaptureRepo::ImageFile(c, "n", 0), "captures/n-0.jpg.sealed");
  // The camera face claims went with their month; the newer one stays.
  EXPECT_FALSE(CaptureRepo::HasFace(c, "CAM-1", "F-a"));
  EXPECT_TRUE(CaptureRepo::HasFace(c, "CAM-1", "F-n"));
  EXPECT_FALSE(CaptureRepo::DropMonthBefore(c, cutoff));
}

}  // namespace
}  // namespace anju::server::storage
