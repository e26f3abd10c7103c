// The events database's monthly partitions on a real PostgreSQL 15 (R3.3.2.5;
// storage/partitions.h, docs/storage.md "Monthly partitions"): the months exist after
// open, rows land in their month, the migration from the unpartitioned schema keeps every
// row, servers opening the database at once do not trip over each other, a retried upload
// is still stored once, and retention drops whole months (with their blobs and audit)
// while newer rows stay.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <thread>

#include "core/clock.h"
#include "core/error.h"
#include "db/local_postgres.h"
#include "db/postgres.h"
#include "server/events/event_store.h"
#include "server/retention/retention.h"
#include "server/runtime/embedded.h"
#include "server/storage/alarm_repo.h"
#include "server/storage/databases.h"
#include "server/storage/event_db.h"
#include "server/storage/event_repo.h"
#include "server/storage/partitions.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using storage::EventRepo;
using storage::Month;
using storage::MonthOf;

db::LocalPostgres& Postgres() {
  static std::unique_ptr<db::LocalPostgres> pg = std::make_unique<db::LocalPostgres>();
  return *pg;
}

crypto::DataKey Key() {
  static const crypto::DataKey key = crypto::DataKey::Generate();
  return key;
}

// The partition a row of TABLE with KEY_COLUMN = KEY sits in.
std::string PartitionOf(db::Conn& c, const std::string& table, const std::string& key_column,
                        const std::string& key) {
  db::Stmt s(c, "SELECT tableoid::regclass::text FROM " + table + " WHERE " + key_column + " = ?");
  s.Bind(1, key);
  if (!s.Step()) return "";
  std::string name = s.Text(0);
  if (auto dot = name.rfind('.'); dot != std::string::npos) name = name.substr(dot + 1);
  return name;
}

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

storage::EventRow Row(const std::string& id, int64_t time_ms) {
  storage::EventRow r;
  r.id = id;
  r.kind = "access";
  r.created_ms = time_ms;
  r.time_ms = time_ms;
  r.door = "0";
  r.person = "P001";
  r.decision = "open";
  r.payload = "{}";
  return r;
}

class EventPartitionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = db::LocalPostgres::Unavailable(); !why.empty())
      GTEST_SKIP() << "PostgreSQL tests skipped: " << why;
    dir_ = testing::TempDir("event-partitions");
    url_ = Postgres().CreateDatabase();
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  fs::path dir_;
  std::string url_;
  const int64_t now_ = NowMs();
};

TEST_F(EventPartitionsTest, MonthsExistAfterOpenAndRowsLandInTheirMonth) {
  auto db = storage::OpenEventsAt(url_, dir_);
  EXPECT_EQ(db->schema_version(), int(storage::EventsSchema().postgres.size()));
  auto c = db->Acquire();
  for (const char* table : {"events", "snapshots"}) {
    const auto parts = storage::Partitions(c, table);
    EXPECT_TRUE(Contains(parts, std::string(table) + "_default")) << table;
    int64_t t = now_;
    for (int i = 0; i <= storage::kMonthsAhead; ++i) {
      const Month m = MonthOf(t);
      EXPECT_TRUE(Contains(parts, std::string(table) + "_" + m.suffix)) << table << " " << m.suffix;
      t = m.to_ms;
    }
  }
  // A month before the ones made ahead: made on request; a time no month holds goes to
  // the default partition instead of being refused.
  const int64_t old = MonthsBefore(now_, 5);
  EventRepo::EnsurePartitions(c, old);
  {
    db::Transaction tx(c);
    EventRepo::Writer w(c);
    w.Insert(Row("now", now_), "T-01", now_);
    w.Insert(Row("old", old), "T-01", now_);
    w.Insert(Row("odd", 1000), "T-01", now_);
    w.InsertSnapshot({"old", old, "snapshots/old", 10});
    tx.Commit();
  }
  EXPECT_EQ(PartitionOf(c, "events", "id", "now"), "events_" + MonthOf(now_).suffix);
  EXPECT_EQ(PartitionOf(c, "events", "id", "old"), "events_" + MonthOf(old).suffix);
  EXPECT_EQ(PartitionOf(c, "snapshots", "event_id", "old"), "snapshots_" + MonthOf(old).suffix);
  EXPECT_EQ(PartitionOf(c, "events", "id", "odd"), "events_default");
  EXPECT_TRUE(EventRepo::Get(c, "old")->has_snapshot);
}

TEST_F(EventPartitionsTest, MigrationFromTheUnpartitionedSchemaKeepsEveryRow) {
  // Version 1 as a server before this change left it, with rows of several months.
  const int64_t very_old = MonthsBefore(now_, storage::kMonthsBack + 3);
  const std::vector<std::pair<std::string, int64_t>> rows = {{"m3", MonthsBefore(now_, 3)},
                                                             {"m2", MonthsBefore(now_, 2)},
                                                             {"m1", MonthsBefore(now_, 1)},
                                                             {"m0", now_ - 1000},
                                                             {"ancient", very_old}};
  std::map<std::string, int64_t> seq;
  {
    db::Migrations v1{storage::EventsSchema().sqlite, {storage::EventsSchema().postgres[0]}};
    db::PostgresOptions o;
    o.name = "events";
    o.schema = "events";
    auto db = db::OpenPostgres(url_, v1, o);
    ASSERT_EQ(db->schema_version(), 1);
    auto c = db->Acquire();
    db::Transaction tx(c);
    EventRepo::Writer w(c);
    for (const auto& [id, t] : rows) {
      w.Insert(Row(id, t), "T-01", now_);
      w.InsertSnapshot({id, t, "snapshots/" + id, 7});
    }
    tx.Commit();
    for (const auto& [id, t] : rows) seq[id] = EventRepo::Get(c, id)->seq;
  }
  auto db = storage::OpenEventsAt(url_, dir_);
  ASSERT_EQ(db->schema_version(), int(storage::EventsSchema().postgres.size()));
  auto c = db->Acquire();
  EXPECT_EQ(EventRepo::Counts(c).events, int64_t(rows.size()));
  EXPECT_EQ(EventRepo::Counts(c).snapshots, int64_t(rows.size()));
  for (const auto& [id, t] : rows) {
    const auto e = EventRepo::Get(c, id);
    ASSERT_TRUE(e) << id;
    EXPECT_EQ(e->time_ms, t);
    EXPECT_EQ(e->seq, seq[id]) << "cursors name seq: it must not change";
    EXPECT_TRUE(e->has_snapshot);
    const std::string want = id == "ancient" ? "events_default" : "events_" + MonthOf(t).suffix;
    EXPECT_EQ(PartitionOf(c, "events", "id", id), want);
  }
  // New rows draw after the carried ones, and an id already stored is still found.
  db::Transaction tx(c);
  EventRepo::Writer w(c);
  EXPECT_TRUE(w.Exists("m2"));
  w.Insert(Row("new", now_), "T-01", now_);
  tx.Commit();
  int64_t max_seq = 0;
  for (const auto& [id, s] : seq) max_seq = std::max(max_seq, s);
  EXPECT_GT(EventRepo::Get(c, "new")->seq, max_seq);
}

TEST_F(EventPartitionsTest, ServersOpeningTheDatabaseAtOnceDoNotFail) {
  std::atomic<int> failures{0};
  std::vector<std::thread> servers;
  for (int i = 0; i < 4; ++i)
    servers.emplace_back([&, i] {
      try {
        auto events = storage::OpenEventsAt(url_, dir_);
        auto captures = storage::OpenCapturesAt(url_, dir_);
        // Months of another time too, all servers at once.
        auto c = events->Acquire();
        for (int k = 0; k < 5; ++k) EventRepo::EnsurePartitions(c, MonthsBefore(now_, 7 + k + i));
      } catch (const std::exception& e) {
        ADD_FAILURE() << "server " << i << ": " << e.what();
        ++failures;
      }
    });
  for (auto& t : servers) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto db = storage::OpenEventsAt(url_, dir_);
  auto c = db->Acquire();
  const auto parts = storage::Partitions(c, "events");
  EXPECT_TRUE(Contains(parts, "events_" + MonthOf(now_).suffix));
  EXPECT_TRUE(Contains(parts, "events_" + MonthOf(MonthsBefore(now_, 12)).suffix));
}

TEST_F(EventPartitionsTest, ARetriedUploadIsStoredOnce) {
  runtime::FileBlobStore blobs(dir_);
  auto make = [&] {
    return std::make_unique<EventStore>(storage::OpenEventsAt(url_, dir_), dir_, Key(), blobs);
  };
  auto a = make();
  auto b = make();  // a second server on the same database
  std::vector<json> events;
  for (int i = 0; i < 20; ++i) {
    const int64_t t = now_ - 60000 + i;
    const std::string id = "00000000-0000-4000-8000-0000000000" + std::to_string(10 + i);
    events.push_back({{"id", id},
                      {"kind", "access"},
                      {"created_ms", t},
                      {"payload", {{"time_ms", t}, {"door", 0}, {"decision", "open"}}}});
  }
  const json batch = {{"events", events}};
  auto first = a->Ingest("T-01", batch);
  ASSERT_EQ(first.stored.size(), events.size());
  // The answer was lost: the terminal sends the batch again, to either server.
  EXPECT_EQ(a->Ingest("T-01", batch).duplicates.size(), events.size());
  EXPECT_EQ(b->Ingest("T-01", batch).duplicates.size(), events.size());
  // Both servers at once with a fresh batch: one copy of each event, whoever wins.
  std::vector<json> fresh;
  for (int i = 0; i < 20; ++i) {
    json e = events[size_t(i)];
    e["id"] = "00000000-0000-4000-8000-0000000001" + std::to_string(10 + i);
    fresh.push_back(e);
  }
  const json again = {{"events", fresh}};
  std::atomic<size_t> stored{0};
  auto send = [&](EventStore& s) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      try {
        stored += s.Ingest("T-01", again).stored.size();
        return;
      } catch (const Error& e) {
        // The loser of a race on the same key is refused whole (the key's constraint);
        // the terminal resends.
        EXPECT_EQ(e.reason(), "constraint") << e.what();
      }
    }
  };
  std::thread ta([&] { send(*a); });
  std::thread tb([&] { send(*b); });
  ta.join();
  tb.join();
  EXPECT_EQ(stored.load(), fresh.size());
  EXPECT_EQ(a->Count().events, int64_t(events.size() + fresh.size()));
}

TEST_F(EventPartitionsTest, RetentionDropsWholeMonthsWithTheirBlobsAndKeepsNewerRows) {
  runtime::FileBlobStore blobs(dir_);
  auto db = storage::OpenEventsAt(url_, dir_);
  const Month m26 = MonthOf(MonthsBefore(now_, 26));
  const Month m14 = MonthOf(MonthsBefore(now_, 14));
  const int64_t t26 = m26.from_ms + 86400000, t14 = m14.from_ms + 86400000;
  const int64_t t_cut = MonthsBefore(now_, 12) - 3600000;  // just before the snapshot cutoff
  const int64_t t_now = now_ - 3600000;
  {
    auto c = db->Acquire();
    // Months as a server running then would have made them.
    EventRepo::EnsurePartitions(c, m26.from_ms);
    EventRepo::EnsurePartitions(c, m14.from_ms);
    db::Transaction tx(c);
    EventRepo::Writer w(c);
    storage::AlarmRepo::Writer alarms(c);
    for (const auto& [id, t] : std::vector<std::pair<std::string, int64_t>>{
             {"a-closed", t26}, {"a-open", t26}, {"b", t14}, {"c", t_cut}, {"d", t_now}}) {
      w.Insert(Row(id, t), "T-01", t);
      if (id.starts_with("a")) {
        storage::AlarmRow a;
        a.event_id = id;
        a.device_id = "T-01";
        a.type = "forced_open";
        a.severity = "major";
        a.time_ms = t;
        alarms.Insert(a);
        continue;
      }
      const std::string key = EventStore::SnapshotKey(id, t);
      const std::vector<uint8_t> sealed(100, uint8_t(id[0]));
      blobs.Put(key, sealed);
      w.InsertSnapshot({id, t, key, int64_t(sealed.size())});
    }
    c.Exec("UPDATE alarms SET state = 'closed' WHERE event_id = 'a-closed'");
    tx.Commit();
  }
  EventStore store(std::move(db), dir_, Key(), blobs);

  std::vector<std::pair<std::string, json>> audit;
  RetentionPolicy policy;  // snapshots 12 months, events 24
  policy.batch = 2;
  const auto r = RunRetention(
      store, policy, std::chrono::system_clock::time_point(std::chrono::milliseconds(now_)),
      [&](std::string action, json detail) { audit.emplace_back(action, detail); });

  auto c = store.database().Acquire();
  // Whole months gone (pg_inherits no longer lists them) ...
  const auto events_parts = storage::Partitions(c, "events");
  const auto snapshot_parts = storage::Partitions(c, "snapshots");
  EXPECT_FALSE(Contains(events_parts, "events_" + m26.suffix));
  EXPECT_FALSE(Contains(snapshot_parts, "snapshots_" + m26.suffix));
  EXPECT_FALSE(Contains(snapshot_parts, "snapshots_" + m14.suffix));
  EXPECT_FALSE(storage::HasMonthPartition(c, "snapshots", m14));
  // ... the events of a month whose snapshots went stay (24 months), marked expired ...
  EXPECT_TRUE(Contains(events_parts, "events_" + m14.suffix));
  EXPECT_GE(r.partitions_dropped, 4);  // snapshots -26..-24 and -14.., events -26..
  const auto b = store.Get("b");
  EXPECT_FALSE(b.has_snapshot);
  EXPECT_GT(b.snapshot_expired_ms, 0);
  EXPECT_THROW(store.Get("a-closed"), Error);
  EXPECT_THROW(store.Get("a-open"), Error);
  // ... the month holding the cutoff went row by row ...
  EXPECT_FALSE(store.Get("c").has_snapshot);
  // ... newer rows stay, with their blobs; the old blobs are gone.
  EXPECT_TRUE(store.Get("d").has_snapshot);
  EXPECT_TRUE(blobs.Exists(EventStore::SnapshotKey("d", t_now)));
  EXPECT_FALSE(blobs.Exists(EventStore::SnapshotKey("b", t14)));
  EXPECT_FALSE(blobs.Exists(EventStore::SnapshotKey("c", t_cut)));
  EXPECT_EQ(r.snapshots_deleted, 2);
  EXPECT_EQ(r.snapshot_bytes_freed, 200);
  EXPECT_EQ(r.orphan_files_deleted, 0) << "a dropped month's blobs are not orphans";
  EXPECT_EQ(r.events_deleted, 2);
  // An open alarm outlives its event; a closed one goes with it.
  const auto counts = store.Count();
  EXPECT_EQ(counts.alarms, 1);
  EXPECT_EQ(counts.events, 3);
  // The audit names what went, in batches of the policy's size.
  std::set<std::string> audited;
  for (const auto& [action, detail] : audit) {
    if (action == "retention.snapshots_deleted") {
      EXPECT_LE(detail["count"].get<size_t>(), policy.batch);
      for (const auto& s : detail["snapshots"]) audited.insert(s["event_id"].get<std::string>());
    }
    if (action == "retention.events_deleted")
      for (const auto& id : detail["event_ids"]) audited.insert(id.get<std::string>());
  }
  EXPECT_EQ(audited, (std::set<std::string>{"a-closed", "a-open", "b", "c"}));
  // A second run finds nothing more to do.
  const auto again = RunRetention(
      store, policy, std::chrono::system_clock::time_point(std::chrono::milliseconds(now_)), {});
  EXPECT_EQ(again.partitions_dropped, 0);
  EXPECT_EQ(again.snapshots_deleted + again.events_deleted, 0);
}

}  // namespace
}  // namespace anju::server
