// Retention (R3.3.2.6): snapshots after 12 months, video references after 3 months,
// deletion is real (files unlinked, rows gone, database file shrinks) and audited.
#include "server/retention/retention.h"
#include "core/error.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <thread>

#include "crypto/bytes.h"
#include "store/outbox.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::system_clock;

constexpr int64_t kDay = 24LL * 3600 * 1000;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
      .count();
}

// A real JPEG snapshot: an LFW face when the data is present, else a drawn card.
const std::vector<uint8_t>& SnapshotJpeg() {
  static const std::vector<uint8_t> jpeg = [] {
    cv::Mat m;
    if (auto dir = testing::DataPath("lfw/lfw/Aaron_Eckhart"); !dir.empty())
      m = cv::imread((dir / "Aaron_Eckhart_0001.jpg").string());
    if (m.empty()) {
      m = cv::Mat(120, 120, CV_8UC3, cv::Scalar(90, 120, 160));
      cv::circle(m, {60, 60}, 40, cv::Scalar(180, 190, 220), -1);
    }
    std::vector<uint8_t> out;
    cv::imencode(".jpg", m, out);
    return out;
  }();
  return jpeg;
}

json Event(const std::string& id, int64_t time_ms, bool snapshot, size_t payload_pad = 0) {
  json ev = {{"id", id},
             {"kind", "access"},
             {"created_ms", time_ms},
             {"payload",
              {{"time_ms", time_ms},
               {"door", 0},
               {"decision", "open"},
               {"person", "P1"},
               {"note", std::string(payload_pad, 'x')}}}};
  if (snapshot) ev["snapshot"] = crypto::ToBase64(SnapshotJpeg());
  return ev;
}

int64_t DirBytes(const fs::path& dir) {
  int64_t total = 0;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) total += int64_t(e.file_size());
  return total;
}

int64_t FileCount(const fs::path& dir) {
  int64_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

struct AuditLog {
  std::vector<std::pair<std::string, json>> calls;
  AuditFn Fn() {
    return [this](std::string action, json detail) {
      calls.emplace_back(std::move(action), std::move(detail));
    };
  }
  std::vector<json> Of(const std::string& action) const {
    std::vector<json> v;
    for (auto& [a, d] : calls)
      if (a == action) v.push_back(d);
    return v;
  }
};

class RetentionTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::TempDir("retention"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
  crypto::DataKey key_ = crypto::DataKey::Generate();
};

TEST(MonthsBefore, CalendarMonthsClampedToTheMonthEnd) {
  using namespace std::chrono;
  auto ms = [](year_month_day d) {
    return duration_cast<milliseconds>(sys_days(d).time_since_epoch()).count();
  };
  EXPECT_EQ(MonthsBefore(ms(2024y / May / 31d), 3), ms(2024y / February / 29d));
  EXPECT_EQ(MonthsBefore(ms(2025y / May / 31d), 3), ms(2025y / February / 28d));
  EXPECT_EQ(MonthsBefore(ms(2026y / November / 25d) + 1234, 12), ms(2025y / November / 25d) + 1234);
  EXPECT_EQ(MonthsBefore(ms(2026y / January / 15d), 1), ms(2025y / December / 15d));
  EXPECT_EQ(MonthsBefore(ms(2026y / January / 15d), 0), ms(2026y / January / 15d));
  EXPECT_THROW(MonthsBefore(0, -1), Error);
}

// R3.3.2.6: exactly the snapshots older than 12 months and the video references older
// than 3 months go; files are unlinked, rows deleted, the audit callback names them.
TEST_F(RetentionTest, DeletesExactlyTheExpiredSnapshotsAndVideoReferences) {
  EventStore store(dir_, key_);
  const int64_t now = NowMs();
  std::set<std::string> old_ids, new_ids;
  std::vector<json> batch;
  for (int i = 0; i < 40; ++i) {
    const std::string id = store::NewOutboxId();
    const bool old = i % 2 == 0;
    // Old: 13-14 months ago; new: 11 months ago or less (kept).
    const int64_t t = old ? now - 400 * kDay - i * kDay / 2 : now - 330 * kDay + i * kDay;
    (old ? old_ids : new_ids).insert(id);
    batch.push_back(Event(id, t, true));
  }
  ASSERT_EQ(store.Ingest("dev-1", {{"events", batch}}).stored.size(), 40u);
  const int64_t old_video = store.AddVideoRef(
      {0, "dev-1", "0", "", now - 100 * kDay, now - 100 * kDay + 30000, "rtsp://nvr/old"});
  const int64_t new_video = store.AddVideoRef(
      {0, "dev-1", "0", "", now - 80 * kDay, now - 80 * kDay + 30000, "rtsp://nvr/new"});
  std::map<std::string, fs::path> files;
  for (auto& id : old_ids) files[id] = store.SnapshotPath(id, store.Get(id).time_ms);
  for (auto& [id, f] : files) ASSERT_TRUE(fs::exists(f));
  const int64_t snap_bytes_before = DirBytes(store.snapshot_dir());

  AuditLog audit;
  RetentionPolicy policy;  // 12 months snapshots, 3 months video, 24 months events
  policy.batch = 7;        // several batches, several audit calls
  const auto report = RunRetention(store, policy, Clock::now(), audit.Fn());

  EXPECT_EQ(report.snapshots_deleted, 20);
  EXPECT_EQ(report.video_refs_deleted, 1);
  EXPECT_EQ(report.events_deleted, 0) << "event rows are kept for 24 months";
  for (auto& [id, f] : files) EXPECT_FALSE(fs::exists(f)) << "file still there: " << f;
  for (auto& id : old_ids) {
    const EventRecord e = store.Get(id);
    EXPECT_FALSE(e.has_snapshot);
    EXPECT_GT(e.snapshot_expired_ms, 0);
    EXPECT_EQ(testing::CodeOf([&] { store.Snapshot(id); }), ErrorCode::kNotFound);
  }
  for (auto& id : new_ids) EXPECT_EQ(store.Snapshot(id), SnapshotJpeg()) << "newer kept";
  EXPECT_EQ(store.Count().snapshots, 20);
  const auto videos = store.VideoRefs();
  ASSERT_EQ(videos.size(), 1u);
  EXPECT_EQ(videos[0].id, new_video);
  EXPECT_EQ(FileCount(store.snapshot_dir()), 20);
  const int64_t snap_bytes_after = DirBytes(store.snapshot_dir());
  EXPECT_EQ(snap_bytes_before - snap_bytes_after, report.snapshot_bytes_freed);
  EXPECT_EQ(report.snapshot_bytes_freed,
            20 * int64_t(SnapshotJpeg().size() + crypto::kSealOverhead));

  // The audit log names exactly what went.
  std::set<std::string> audited;
  for (auto& d : audit.Of("retention.snapshots_deleted"))
    for (auto& s : d["snapshots"]) audited.insert(s["event_id"].get<std::string>());
  EXPECT_EQ(audited, old_ids);
  EXPECT_EQ(audit.Of("retention.snapshots_deleted").size(), 3u);  // 7 + 7 + 6
  const auto video_audit = audit.Of("retention.video_refs_deleted");
  ASSERT_EQ(video_audit.size(), 1u);
  EXPECT_EQ(video_audit[0]["video_ref_ids"], json::array({old_video}));
  ASSERT_EQ(audit.Of("retention.completed").size(), 1u);
  EXPECT_EQ(audit.Of("retention.completed")[0]["snapshots_deleted"], 20);

  // Idempotent: a second run finds nothing.
  AuditLog again;
  const auto second = RunRetention(store, policy, Clock::now(), again.Fn());
  EXPECT_EQ(second.snapshots_deleted + second.video_refs_deleted + second.events_deleted +
                second.orphan_files_deleted,
            0);
  EXPECT_EQ(again.calls.size(), 1u) << "only the summary";
}

// Event rows past their period go too and the database file really shrinks.
TEST_F(RetentionTest, ExpiredEventsAreDeletedAndTheDatabaseShrinks) {
  EventStore store(dir_, key_);
  const int64_t now = NowMs();
  for (int b = 0; b < 8; ++b) {
    std::vector<json> batch;
    for (int i = 0; i < 250; ++i)
      batch.push_back(
          Event(store::NewOutboxId(), now - 500 * kDay + (b * 250 + i) * 1000, i % 50 == 0, 1500));
    ASSERT_EQ(store.Ingest("dev-1", {{"events", batch}}).stored.size(), 250u);
  }
  std::vector<std::string> recent;
  std::vector<json> batch;
  for (int i = 0; i < 50; ++i) {
    recent.push_back(store::NewOutboxId());
    batch.push_back(Event(recent.back(), now - 10 * kDay + i, i % 10 == 0, 1500));
  }
  store.Ingest("dev-1", {{"events", batch}});
  // An open alarm on an expired event is kept.
  const std::string alarm_event = store::NewOutboxId();
  store.Ingest("dev-1",
               {{"events",
                 {{{"id", alarm_event},
                   {"kind", "alarm"},
                   {"created_ms", now - 500 * kDay},
                   {"payload", {{"alarm_type", "tamper"}, {"time_ms", now - 500 * kDay}}}}}}});
  store.ReclaimSpace();
  const int64_t db_before = int64_t(fs::file_size(store.database_file()));

  RetentionPolicy policy;
  policy.event_months = 12;
  AuditLog audit;
  const auto report = RunRetention(store, policy, Clock::now(), audit.Fn());
  EXPECT_EQ(report.events_deleted, 2001);
  EXPECT_EQ(report.snapshots_deleted, 40);
  const int64_t db_after = int64_t(fs::file_size(store.database_file()));
  std::printf("    events.db %lld -> %lld bytes (report: %lld -> %lld, freed %lld)\n",
              (long long)db_before, (long long)db_after, (long long)report.db_bytes_before,
              (long long)report.db_bytes_after, (long long)report.bytes_freed());
  EXPECT_LT(db_after, db_before / 4) << "space is given back to the file system";
  EXPECT_EQ(store.Count().events, 50);
  for (auto& id : recent) EXPECT_NO_THROW(store.Get(id));
  EventQuery q;
  q.limit = 1000;
  EXPECT_EQ(store.Query(q).total, 50);
  AlarmQuery aq;
  ASSERT_EQ(store.Alarms(aq).total, 1);
  EXPECT_EQ(store.Alarms(aq).items[0].event_id, alarm_event);
  size_t audited = 0;
  for (auto& d : audit.Of("retention.events_deleted")) audited += d["event_ids"].size();
  EXPECT_EQ(audited, 2001u);
  EXPECT_EQ(FileCount(store.snapshot_dir()), 5);
}

// Files a crash left behind (written but never committed) in expired days are swept;
// anything else stays.
TEST_F(RetentionTest, OrphanSnapshotFilesOfExpiredDaysAreSwept) {
  EventStore store(dir_, key_);
  const int64_t now = NowMs();
  const fs::path orphan = store.SnapshotPath(store::NewOutboxId(), now - 400 * kDay);
  const fs::path recent_orphan = store.SnapshotPath(store::NewOutboxId(), now - 2 * kDay);
  const fs::path foreign = orphan.parent_path() / "README.txt";
  for (auto& f : {orphan, recent_orphan, foreign}) {
    fs::create_directories(f.parent_path());
    std::ofstream(f) << "leftover";
  }
  AuditLog audit;
  const auto report = RunRetention(store, RetentionPolicy{}, Clock::now(), audit.Fn());
  EXPECT_EQ(report.orphan_files_deleted, 1);
  EXPECT_FALSE(fs::exists(orphan));
  EXPECT_TRUE(fs::exists(recent_orphan)) << "a day not yet expired is left alone";
  EXPECT_TRUE(fs::exists(foreign)) << "only *.jpg.sealed files are ours";
  ASSERT_EQ(audit.Of("retention.orphan_files_deleted").size(), 1u);
  EXPECT_EQ(audit.Of("retention.orphan_files_deleted")[0]["files"][0],
            orphan.lexically_relative(dir_).generic_string());
  // Empty expired directories go; the one still holding a foreign file stays.
  fs::remove(foreign);
  RunRetention(store, RetentionPolicy{}, Clock::now(), {});
  EXPECT_FALSE(fs::exists(orphan.parent_path().parent_path()));  // the month directory
}

// Retention runs while a terminal uploads: nothing new is lost, everything expired goes.
TEST_F(RetentionTest, SafeWhileIngesting) {
  EventStore store(dir_, key_);
  const int64_t now = NowMs();
  for (int b = 0; b < 4; ++b) {
    std::vector<json> batch;
    for (int i = 0; i < 100; ++i)
      batch.push_back(Event(store::NewOutboxId(), now - 400 * kDay + b * 100 + i, i % 3 == 0));
    store.Ingest("dev-1", {{"events", batch}});
  }
  std::atomic<bool> stop{false};
  std::vector<std::string> stored;
  std::thread writer([&] {
    while (!stop) {
      std::vector<json> batch;
      for (int i = 0; i < 20; ++i)
        batch.push_back(Event(store::NewOutboxId(), NowMs(), i % 4 == 0));
      for (auto& id : store.Ingest("dev-2", {{"events", batch}}).stored) stored.push_back(id);
    }
  });
  RetentionPolicy policy;
  policy.event_months = 12;
  policy.batch = 16;
  RetentionReport report;
  for (int i = 0; i < 3; ++i) {
    const auto r = RunRetention(store, policy, Clock::now(), {});
    report.events_deleted += r.events_deleted;
    report.snapshots_deleted += r.snapshots_deleted;
  }
  stop = true;
  writer.join();
  EXPECT_EQ(report.events_deleted, 400);
  EXPECT_EQ(report.snapshots_deleted, 136);
  ASSERT_FALSE(stored.empty());
  EXPECT_EQ(store.Count().events, int64_t(stored.size()));
  for (auto& id : stored)
    if (store.Get(id).has_snapshot) {
      EXPECT_EQ(store.Snapshot(id), SnapshotJpeg());
    }
}

}  // namespace
}  // namespace anju::server
