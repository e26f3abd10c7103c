// events.db on the storage seam (storage/event_db.h): a file written before the migration
// list opens without losing a row, files of another kind are refused untouched, and the
// event and alarm repositories behave alike on SQLite and PostgreSQL.
#include "server/storage/event_db.h"

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>

#include "core/error.h"
#include "db/local_postgres.h"
#include "db/postgres.h"
#include "server/events/event_store.h"
#include "server/storage/alarm_repo.h"
#include "server/storage/event_repo.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
using testing::CodeOf;

// The DDL and version marker of the event store before it moved onto db::Db, as
// EventDb::CreateSchema wrote them (application_id "ANJE", user_version 1), kept verbatim
// here so that the test does not follow later changes to the migration list.
constexpr const char* kLegacyDdl =
    "CREATE TABLE events("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " device_id TEXT NOT NULL,"
    " kind TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " time_ms INTEGER NOT NULL,"
    " received_ms INTEGER NOT NULL,"
    " door TEXT NOT NULL,"
    " person TEXT NOT NULL,"
    " decision TEXT NOT NULL,"
    " alarm_type TEXT NOT NULL,"
    " payload TEXT NOT NULL,"
    " snapshot_bytes INTEGER NOT NULL DEFAULT 0,"
    " snapshot_expired_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX events_time ON events(time_ms);"
    "CREATE INDEX events_door ON events(door, time_ms);"
    "CREATE INDEX events_device ON events(device_id, time_ms);"
    "CREATE INDEX events_person ON events(person, time_ms);"
    "CREATE INDEX events_kind ON events(kind, decision, time_ms);"
    "CREATE TABLE snapshots("
    " event_id TEXT PRIMARY KEY,"
    " time_ms INTEGER NOT NULL,"
    " file TEXT NOT NULL,"
    " bytes INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX snapshots_time ON snapshots(time_ms);"
    "CREATE TABLE alarms("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " event_id TEXT NOT NULL UNIQUE,"
    " device_id TEXT NOT NULL,"
    " type TEXT NOT NULL,"
    " severity TEXT NOT NULL,"
    " door TEXT NOT NULL,"
    " person TEXT NOT NULL,"
    " time_ms INTEGER NOT NULL,"
    " description TEXT NOT NULL,"
    " state TEXT NOT NULL,"
    " acknowledged_by TEXT NOT NULL DEFAULT '',"
    " acknowledged_ms INTEGER NOT NULL DEFAULT 0,"
    " acknowledge_note TEXT NOT NULL DEFAULT '',"
    " closed_by TEXT NOT NULL DEFAULT '',"
    " closed_ms INTEGER NOT NULL DEFAULT 0,"
    " close_note TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX alarms_time ON alarms(time_ms);"
    "CREATE INDEX alarms_state ON alarms(state, time_ms);"
    "CREATE TABLE alarm_actions("
    " seq INTEGER PRIMARY KEY,"
    " alarm_id INTEGER NOT NULL,"
    " from_state TEXT NOT NULL,"
    " to_state TEXT NOT NULL,"
    " actor TEXT NOT NULL,"
    " note TEXT NOT NULL,"
    " at_ms INTEGER NOT NULL);"
    "CREATE INDEX alarm_actions_alarm ON alarm_actions(alarm_id);"
    "CREATE TABLE quarantine("
    " seq INTEGER PRIMARY KEY,"
    " device_id TEXT NOT NULL,"
    " received_ms INTEGER NOT NULL,"
    " event_id TEXT NOT NULL,"
    " code TEXT NOT NULL,"
    " message TEXT NOT NULL,"
    " raw TEXT NOT NULL,"
    " raw_sha256 TEXT NOT NULL,"
    " UNIQUE(device_id, raw_sha256));"
    "CREATE INDEX quarantine_time ON quarantine(received_ms);"
    "CREATE TABLE video_refs("
    " id INTEGER PRIMARY KEY,"
    " device_id TEXT NOT NULL,"
    " door TEXT NOT NULL,"
    " event_id TEXT NOT NULL,"
    " start_ms INTEGER NOT NULL,"
    " end_ms INTEGER NOT NULL,"
    " uri TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE INDEX video_refs_start ON video_refs(start_ms);";

constexpr int64_t kT = 1760000000000;  // 2025-10-09
constexpr const char* kEvent1 = "0b5c2a4e-1f3d-4c5b-9a8e-7d6c5b4a3f21";
constexpr const char* kEvent2 = "1c6d3b5f-2a4e-4d6c-8b9f-8e7d6c5b4a32";

void Exec(sqlite3* db, const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  const std::string msg = err ? err : "";
  sqlite3_free(err);
  ASSERT_EQ(rc, SQLITE_OK) << sql.substr(0, 80) << ": " << msg;
}

std::string Query1(const fs::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  std::string out;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK &&
      sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
    out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  sqlite3_finalize(s);
  sqlite3_close(db);
  return out;
}

// An events.db as the event store wrote it before the migration list: the same pragmas,
// in the same order, then the schema and its version marker in one transaction, and rows
// in every table.
void WriteLegacyEventsDb(const fs::path& file) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr),
            SQLITE_OK);
  Exec(db, "PRAGMA auto_vacuum=INCREMENTAL");
  Exec(db, "PRAGMA journal_mode=WAL");
  Exec(db, "PRAGMA synchronous=FULL");
  Exec(db, "PRAGMA foreign_keys=OFF");
  Exec(db, "BEGIN IMMEDIATE");
  Exec(db, kLegacyDdl);
  Exec(db, "PRAGMA application_id=" + std::to_string(0x414E4A45) + "; PRAGMA user_version=1");
  Exec(db, "COMMIT");
  const std::string t = std::to_string(kT);
  Exec(db,
       "INSERT INTO events(id, device_id, kind, created_ms, time_ms, received_ms, door, person, "
       "decision, alarm_type, payload, snapshot_bytes) VALUES"
       "('" +
           std::string(kEvent1) + "', 'T-01', 'access', " + t + ", " + t + ", " + t +
           ", '0', 'P001', 'open', '', '{\"time_ms\":" + t +
           ",\"decision\":\"open\"}', 1234),"
           "('" +
           std::string(kEvent2) + "', 'T-01', 'access', " + t + ", " + std::to_string(kT + 1000) +
           ", " + t + ", '0', '', 'stranger', 'stranger', '{\"decision\":\"stranger\"}', 0)");
  Exec(db, "INSERT INTO snapshots(event_id, time_ms, file, bytes) VALUES('" + std::string(kEvent1) +
               "', " + t + ", 'snapshots/2025/10/09/" + kEvent1 + ".jpg.sealed', 1300)");
  Exec(db,
       "INSERT INTO alarms(event_id, device_id, type, severity, door, person, time_ms, "
       "description, state, acknowledged_by, acknowledged_ms) VALUES('" +
           std::string(kEvent2) + "', 'T-01', 'stranger', 'major', '0', '', " +
           std::to_string(kT + 1000) + ", '陌生人 / stranger', 'acknowledged', 'guard', " + t +
           ")");
  Exec(db,
       "INSERT INTO alarm_actions(alarm_id, from_state, to_state, actor, note, at_ms) "
       "VALUES(1, 'new', 'acknowledged', 'guard', '', " +
           t + ")");
  Exec(db,
       "INSERT INTO quarantine(device_id, received_ms, event_id, code, message, raw, "
       "raw_sha256) VALUES('T-01', " +
           t + ", '', 'bad_request', 'no id', '{\"kind\":1}', 'x')");
  Exec(db,
       "INSERT INTO video_refs(device_id, door, event_id, start_ms, end_ms, uri, created_ms) "
       "VALUES('T-01', '0', '" +
           std::string(kEvent1) + "', " + t + ", " + std::to_string(kT + 5000) +
           ", 'rtsp://nvr/1', " + t + ")");
  ASSERT_EQ(sqlite3_close(db), SQLITE_OK);
}

class EventsDbTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::TempDir("events-db"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(EventsDbTest, AFileWrittenBeforeTheMigrationListOpensWithEveryRow) {
  const fs::path file = dir_ / "events.db";
  WriteLegacyEventsDb(file);
  {
    auto db = storage::OpenEventsDb(file);
    // Adopted from user_version as 1 (step 1 not run again), then the later steps.
    EXPECT_EQ(db->schema_version(), int(storage::EventsSchema().sqlite.size()));
  }
  EXPECT_EQ(Query1(file, "SELECT MIN(version) FROM schema_version"), "1");
  EXPECT_EQ(Query1(file, "SELECT COALESCE(MAX(version), 0) FROM schema_version"),
            std::to_string(storage::EventsSchema().sqlite.size()));
  EXPECT_EQ(Query1(file, "PRAGMA auto_vacuum"), "2");  // still incremental

  const auto key = crypto::DataKey::Generate();
  EventStore store(dir_, key);
  const auto c = store.Count();
  EXPECT_EQ(c.events, 2);
  EXPECT_EQ(c.snapshots, 1);
  EXPECT_EQ(c.alarms, 1);
  EXPECT_EQ(c.quarantined, 1);
  EXPECT_EQ(c.video_refs, 1);

  const EventRecord e1 = store.Get(kEvent1);
  EXPECT_EQ(e1.device_id, "T-01");
  EXPECT_EQ(e1.time_ms, kT);
  EXPECT_EQ(e1.person, "P001");
  EXPECT_EQ(e1.decision, "open");
  EXPECT_EQ(e1.payload["decision"], "open");
  EXPECT_TRUE(e1.has_snapshot);
  EXPECT_EQ(e1.snapshot_bytes, 1234);

  EventQuery q;
  const EventPage page = store.Query(q);
  ASSERT_EQ(page.total, 2);
  ASSERT_EQ(page.items.size(), 2u);
  EXPECT_EQ(page.items[0].id, kEvent2);  // newest first
  EXPECT_EQ(page.items[1].id, kEvent1);

  const Alarm a = store.GetAlarm(1);
  EXPECT_EQ(a.event_id, kEvent2);
  EXPECT_EQ(a.state, AlarmState::kAcknowledged);
  EXPECT_EQ(a.acknowledged_by, "guard");
  EXPECT_EQ(a.description, "陌生人 / stranger");
  // The handling goes on where it stopped.
  EXPECT_EQ(store.SetAlarmState(1, AlarmState::kClosed, "guard").state, AlarmState::kClosed);

  const auto refs = store.VideoRefs();
  ASSERT_EQ(refs.size(), 1u);
  EXPECT_EQ(refs[0].uri, "rtsp://nvr/1");
  EXPECT_EQ(store.AddVideoRef({0, "T-01", "0", "", kT, kT + 1, "rtsp://nvr/2"}), 2);

  const auto quarantined = store.Quarantine();
  ASSERT_EQ(quarantined.size(), 1u);
  EXPECT_EQ(quarantined[0]["raw"], "{\"kind\":1}");

  // New uploads land beside the old rows.
  const auto r = store.Ingest("T-02", {{"events",
                                        {{{"id", "2d7e4c6a-3b5f-4e7d-9c0a-9f8e7d6c5b43"},
                                          {"kind", "access"},
                                          {"created_ms", kT + 2000},
                                          {"payload",
                                           {{"time_ms", kT + 2000},
                                            {"door", 0},
                                            {"decision", "open"},
                                            {"reason", "matched"},
                                            {"score", 0.83},
                                            {"liveness", 0.97},
                                            {"person", "P002"}}}}}}});
  EXPECT_EQ(r.stored.size(), 1u);
  EXPECT_EQ(store.Count().events, 3);
}

TEST_F(EventsDbTest, AFileOfAnotherKindIsRefusedAndLeftAsItWas) {
  const fs::path file = dir_ / "events.db";
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
    Exec(db, "CREATE TABLE notes(id INTEGER PRIMARY KEY, text TEXT)");
    sqlite3_close(db);
  }
  const auto before = fs::file_size(file);
  EXPECT_EQ(CodeOf([&] { EventStore store(dir_, crypto::DataKey::Generate()); }),
            ErrorCode::kCorrupt);
  EXPECT_EQ(fs::file_size(file), before);
  EXPECT_EQ(Query1(file, "SELECT count(*) FROM sqlite_master WHERE name = 'schema_version'"), "0");
  EXPECT_EQ(Query1(file, "PRAGMA journal_mode"), "delete");  // not switched to WAL

  // Not a database at all.
  fs::remove(file);
  std::ofstream(file) << std::string(8192, 'x');
  EXPECT_EQ(CodeOf([&] { EventStore store(dir_, crypto::DataKey::Generate()); }),
            ErrorCode::kCorrupt);
}

TEST_F(EventsDbTest, ANewFileIsAnIncrementalEventStoreAtTheLatestVersion) {
  const fs::path file = dir_ / "events.db";
  {
    auto db = storage::OpenEventsDb(file);
    EXPECT_EQ(db->schema_version(), int(storage::EventsSchema().sqlite.size()));
  }
  EXPECT_EQ(Query1(file, "PRAGMA application_id"), std::to_string(0x414E4A45));
  EXPECT_EQ(Query1(file, "PRAGMA auto_vacuum"), "2");
  EXPECT_EQ(Query1(file, "PRAGMA journal_mode"), "wal");
  // Opening again neither migrates nor refuses it.
  auto again = storage::OpenEventsDb(file);
  EXPECT_EQ(again->schema_version(), int(storage::EventsSchema().sqlite.size()));
}

// ---- the repositories on both backends -----------------------------------------------

using storage::AlarmRepo;
using storage::EventRepo;

db::LocalPostgres& SharedPostgres() {
  static std::unique_ptr<db::LocalPostgres> pg = std::make_unique<db::LocalPostgres>();
  return *pg;
}

const char* DialectName(const ::testing::TestParamInfo<db::Dialect>& info) {
  return info.param == db::Dialect::kSqlite ? "Sqlite" : "Postgres";
}

class EventReposTest : public ::testing::TestWithParam<db::Dialect> {
 protected:
  void SetUp() override {
    dir_ = testing::TempDir("event-repos");
    if (GetParam() == db::Dialect::kPostgres) {
      if (auto why = db::LocalPostgres::Unavailable(); !why.empty())
        GTEST_SKIP() << "PostgreSQL tests skipped: " << why;
      db::PostgresOptions o;
      o.name = "events";
      o.pool_size = 2;
      db_ = db::OpenPostgres(SharedPostgres().CreateDatabase(), storage::EventsSchema(), o);
    } else {
      db_ = storage::OpenEventsDb(dir_ / "events.db");
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  static storage::EventRow Row(const std::string& id, int64_t time_ms, const std::string& door,
                               const std::string& decision = "open") {
    storage::EventRow r;
    r.id = id;
    r.kind = "access";
    r.created_ms = time_ms;
    r.time_ms = time_ms;
    r.door = door;
    r.person = "P001";
    r.decision = decision;
    r.payload = "{}";
    return r;
  }

  fs::path dir_;
  std::unique_ptr<db::Db> db_;
};

INSTANTIATE_TEST_SUITE_P(Backends, EventReposTest,
                         ::testing::Values(db::Dialect::kSqlite, db::Dialect::kPostgres),
                         DialectName);

TEST_P(EventReposTest, EventsGoInAndComeOutFilteredAndPaged) {
  {
    auto c = db_->Acquire();
    db::Transaction tx(c);
    EventRepo::Writer w(c);
    for (int i = 0; i < 5; ++i) {
      const std::string id = "e" + std::to_string(i);
      EXPECT_FALSE(w.Exists(id));
      w.Insert(Row(id, kT + i * 1000, i % 2 ? "east" : "west", i == 4 ? "deny" : "open"),
               i < 3 ? "T-01" : "T-02", kT + 10000);
      if (i < 2) w.InsertSnapshot({id, kT + i * 1000, "snapshots/" + id, 100 + i});
    }
    EXPECT_TRUE(w.Exists("e0"));
    const storage::QuarantineRow q{0, "T-01", kT, "bad", "bad_request", "no id", "{}"};
    w.Quarantine(q);
    w.Quarantine(q);  // the same raw event from the same device is kept once
    tx.Commit();
  }
  auto c = db_->AcquireReader();
  storage::EventFilter all;
  EXPECT_EQ(EventRepo::Count(c, all), 5);
  storage::EventFilter east;
  east.door = "east";
  EXPECT_EQ(EventRepo::Count(c, east), 2);
  storage::EventFilter window;
  window.from_ms = kT + 1000;
  window.to_ms = kT + 4000;
  window.device = "T-01";
  EXPECT_EQ(EventRepo::Count(c, window), 2);
  storage::EventFilter none;
  none.devices = std::vector<std::string>{};
  EXPECT_EQ(EventRepo::Count(c, none), 0);
  storage::EventFilter t2;
  t2.devices = std::vector<std::string>{"T-02", "T-09"};
  t2.decision = "deny";
  EXPECT_EQ(EventRepo::Count(c, t2), 1);

  const auto first = EventRepo::Page(c, all, std::nullopt, 2, 0);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].id, "e4");  // newest first
  EXPECT_EQ(first[1].id, "e3");
  const auto next =
      EventRepo::Page(c, all, storage::EventPosition{first[1].time_ms, first[1].seq}, 10, 0);
  ASSERT_EQ(next.size(), 3u);
  EXPECT_EQ(next[0].id, "e2");
  EXPECT_EQ(EventRepo::Page(c, all, std::nullopt, 10, 3).size(), 2u);
  int n = 0;
  EventRepo::ForEach(c, east, [&](const storage::EventRow&) { ++n; });
  EXPECT_EQ(n, 2);

  const auto e0 = EventRepo::Get(c, "e0");
  ASSERT_TRUE(e0);
  EXPECT_TRUE(e0->has_snapshot);
  EXPECT_EQ(e0->device_id, "T-01");
  EXPECT_EQ(e0->received_ms, kT + 10000);
  EXPECT_FALSE(EventRepo::Get(c, "e4")->has_snapshot);
  EXPECT_FALSE(EventRepo::Get(c, "nope"));
  EXPECT_EQ(EventRepo::SnapshotFile(c, "e1"), "snapshots/e1");
  EXPECT_FALSE(EventRepo::SnapshotFile(c, "e2"));

  EXPECT_EQ(EventRepo::QuarantineCount(c, std::nullopt), 1);
  EXPECT_EQ(EventRepo::QuarantineCount(c, std::vector<std::string>{"T-02"}), 0);
  const auto q = EventRepo::Quarantined(c, std::nullopt, 10, 0);
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].code, "bad_request");
  const auto counts = EventRepo::Counts(c);
  EXPECT_EQ(counts.events, 5);
  EXPECT_EQ(counts.snapshots, 2);
  EXPECT_EQ(counts.quarantined, 1);
}

TEST_P(EventReposTest, RetentionExpiresSnapshotsAndDeletesOldRows) {
  auto c = db_->Acquire();
  {
    db::Transaction tx(c);
    EventRepo::Writer w(c);
    for (int i = 0; i < 4; ++i) {
      const std::string id = "e" + std::to_string(i);
      w.Insert(Row(id, kT + i * 1000, "0"), "T-01", kT);
      if (i < 2) w.InsertSnapshot({id, kT + i * 1000, "snapshots/" + id, 10});
      w.Quarantine({0, "T-01", kT + i * 1000, id, "bad_request", "m", "raw" + id});
    }
    tx.Commit();
  }
  EXPECT_EQ(EventRepo::InsertVideoRef(c, {0, "T-01", "0", "e0", kT, kT + 10, "u1"}, kT), 1);
  EXPECT_EQ(EventRepo::InsertVideoRef(c, {0, "T-01", "0", "e3", kT + 3000, kT + 3010, "u2"}, kT),
            2);
  EXPECT_EQ(EventRepo::VideoRefs(c, 0, 0).size(), 2u);
  EXPECT_EQ(EventRepo::VideoRefs(c, kT + 1, 0).size(), 1u);
  EXPECT_EQ(EventRepo::VideoRefs(c, 0, kT + 1).size(), 1u);

  db::Transaction tx(c);
  const auto snaps = EventRepo::SnapshotsBefore(c, kT + 5000, 1);
  ASSERT_EQ(snaps.size(), 1u);
  EXPECT_EQ(snaps[0].event_id, "e0");
  EventRepo::ExpireSnapshots(c, snaps, kT + 99);
  EXPECT_EQ(EventRepo::Get(c, "e0")->snapshot_expired_ms, kT + 99);
  EXPECT_FALSE(EventRepo::Get(c, "e0")->has_snapshot);
  const auto old = EventRepo::EventsWithoutSnapshotBefore(c, kT + 2500, 10);
  EXPECT_EQ(old, (std::vector<std::string>{"e0", "e2"}));
  EventRepo::DeleteEvents(c, old);
  EXPECT_EQ(EventRepo::DeleteVideoRefsBefore(c, kT + 1, 10), (std::vector<int64_t>{1}));
  EXPECT_EQ(EventRepo::DeleteQuarantineBefore(c, kT + 1500, 10).size(), 2u);
  tx.Commit();
  const auto counts = EventRepo::Counts(c);
  EXPECT_EQ(counts.events, 2);
  EXPECT_EQ(counts.snapshots, 1);
  EXPECT_EQ(counts.video_refs, 1);
  EXPECT_EQ(counts.quarantined, 2);
}

TEST_P(EventReposTest, AlarmsAreInsertedOnceListedAndHandled) {
  auto c = db_->Acquire();
  {
    db::Transaction tx(c);
    AlarmRepo::Writer w(c);
    for (int i = 0; i < 3; ++i) {
      storage::AlarmRow a;
      a.event_id = "e" + std::to_string(i);
      a.device_id = i < 2 ? "T-01" : "T-02";
      a.type = i ? "stranger" : "tamper";
      a.severity = "major";
      a.door = "0";
      a.time_ms = kT + i * 1000;
      a.description = "d" + std::to_string(i);
      w.Insert(a);
      w.Insert(a);  // an event that already has an alarm keeps it
    }
    tx.Commit();
  }
  storage::AlarmFilter all;
  EXPECT_EQ(AlarmRepo::Count(c, all), 3);
  storage::AlarmFilter strangers;
  strangers.type = "stranger";
  strangers.devices = std::vector<std::string>{"T-01"};
  EXPECT_EQ(AlarmRepo::Count(c, strangers), 1);
  const auto list = AlarmRepo::List(c, all, 2, 0);
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].event_id, "e2");  // newest first
  const int64_t id0 = AlarmRepo::List(c, all, 1, 2)[0].id;
  EXPECT_EQ(AlarmRepo::State(c, id0), "new");
  {
    db::Transaction tx(c);
    AlarmRepo::SetState(c, id0, "new", "acknowledged", "guard", "seen", kT + 5);
    AlarmRepo::SetState(c, id0, "acknowledged", "closed", "boss", "done", kT + 6);
    tx.Commit();
  }
  const auto a0 = AlarmRepo::Get(c, id0);
  ASSERT_TRUE(a0);
  EXPECT_EQ(a0->state, "closed");
  EXPECT_EQ(a0->acknowledged_by, "guard");
  EXPECT_EQ(a0->acknowledge_note, "seen");
  EXPECT_EQ(a0->closed_ms, kT + 6);
  EXPECT_FALSE(AlarmRepo::Get(c, 999));
  storage::AlarmFilter closed;
  closed.state = "closed";
  EXPECT_EQ(AlarmRepo::Count(c, closed), 1);
  {
    db::Transaction tx(c);
    AlarmRepo::DeleteClosedOf(c, {"e0", "e1"});  // e1's alarm is open: it stays
    tx.Commit();
  }
  EXPECT_EQ(AlarmRepo::Count(c, all), 2);
  db::Stmt actions(c, "SELECT COUNT(*) FROM alarm_actions");
  ASSERT_TRUE(actions.Step());
  EXPECT_EQ(actions.Int(0), 0);
}

}  // namespace
}  // namespace anju::server
