// EventStore (R3.2.1.1, R3.4.2.2): idempotent ingestion with real
// SQLite files and sealed snapshot files, quarantine, queries, CSV, alarms, kill -9.
#include "server/events/event_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "crypto/bytes.h"
#include "protocol/api_error.h"
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

// A real JPEG: an LFW face when the data is present, else a drawn test card. VARIANT
// changes a few pixels so every snapshot differs.
std::vector<uint8_t> Jpeg(int variant) {
  static const cv::Mat base = [] {
    const fs::path dir = testing::DataPath("lfw/lfw/Aaron_Eckhart");
    cv::Mat m;
    if (!dir.empty()) m = cv::imread((dir / "Aaron_Eckhart_0001.jpg").string());
    if (m.empty()) {
      m = cv::Mat(160, 160, CV_8UC3, cv::Scalar(90, 120, 160));
      cv::circle(m, {80, 80}, 50, cv::Scalar(180, 190, 220), -1);
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

json Access(const std::string& id, int64_t time_ms, const std::string& decision = "open",
            const std::string& person = "P001", int door = 0) {
  json payload = {{"time_ms", time_ms},  {"door", door},  {"decision", decision},
                  {"reason", "matched"}, {"score", 0.83}, {"liveness", 0.97},
                  {"terminal", "T-01"}};
  payload["person"] = person.empty() ? json() : json(person);
  return {{"id", id}, {"kind", "access"}, {"created_ms", time_ms}, {"payload", payload}};
}

json WithSnapshot(json ev, const std::vector<uint8_t>& jpeg) {
  ev["snapshot"] = crypto::ToBase64(jpeg);
  return ev;
}

json Batch(std::vector<json> events) {
  return {{"events", events}};
}

crypto::DataKey Key() {
  static const crypto::DataKey key = crypto::DataKey::Generate();
  return key;
}

class EventStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::TempDir("event-store"); }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(EventStoreTest, SameIdIsStoredOnceWithinABatchAndAcrossRestarts) {
  const int64_t t = NowMs() - 60000;
  const std::string a = store::NewOutboxId(), b = store::NewOutboxId();
  const auto jpeg = Jpeg(1);
  {
    EventStore events(dir_, Key());
    auto r = events.Ingest(
        "dev-1", Batch({WithSnapshot(Access(a, t), jpeg), Access(b, t + 1), Access(a, t)}));
    EXPECT_EQ(r.stored, (std::vector<std::string>{a, b}));
    EXPECT_EQ(r.duplicates, (std::vector<std::string>{a}));
    EXPECT_TRUE(r.rejected.empty());
    // Upper-case spelling of the same UUID is the same event.
    std::string upper = b;
    for (char& c : upper) c = char(std::toupper(c));
    r = events.Ingest("dev-1", Batch({Access(upper, t + 1)}));
    EXPECT_TRUE(r.stored.empty());
    EXPECT_EQ(r.duplicates.size(), 1u);
  }
  // A resend after a restart (terminal never saw the answer) changes nothing.
  EventStore events(dir_, Key());
  auto r = events.Ingest("dev-1", Batch({WithSnapshot(Access(a, t), Jpeg(2)), Access(b, t + 1)}));
  EXPECT_TRUE(r.stored.empty());
  EXPECT_EQ(r.duplicates.size(), 2u);
  const auto counts = events.Count();
  EXPECT_EQ(counts.events, 2);
  EXPECT_EQ(counts.snapshots, 1);
  EXPECT_EQ(events.Snapshot(a), jpeg) << "first copy wins";
  EXPECT_EQ(ToJson(r)["duplicates"].size(), 2u);
}

TEST_F(EventStoreTest, MalformedEventsAreQuarantinedVerbatimAndReported) {
  EventStore events(dir_, Key());
  const int64_t t = NowMs() - 1000;
  const std::string good = store::NewOutboxId();
  json bad_payload = Access(store::NewOutboxId(), t);
  bad_payload["payload"] = "not an object";
  json unknown = Access(store::NewOutboxId(), t);
  unknown["colour"] = "red";
  json bad_kind = Access(store::NewOutboxId(), t);
  bad_kind["kind"] = "selfie";
  json not_jpeg = Access(store::NewOutboxId(), t);
  not_jpeg["snapshot"] = crypto::ToBase64(crypto::AsBytes("PNG? no, just text"));
  json bad_b64 = Access(store::NewOutboxId(), t);
  bad_b64["snapshot"] = "***";
  json future = Access(store::NewOutboxId(), t + 3LL * 24 * 3600 * 1000);
  json bad_decision = Access(store::NewOutboxId(), t, "maybe");
  json bad_person = Access(store::NewOutboxId(), t, "open", "张三");
  const json batch = Batch({Access("not-a-uuid", t), Access(good, t), bad_payload, unknown,
                            bad_kind, not_jpeg, bad_b64, future, bad_decision, bad_person, 42});
  auto r = events.Ingest("dev-9", batch);
  EXPECT_EQ(r.stored, std::vector<std::string>{good});
  ASSERT_EQ(r.rejected.size(), 10u);
  EXPECT_EQ(r.rejected[0].id, "not-a-uuid");
  EXPECT_EQ(r.rejected[0].code, "bad_request");
  EXPECT_EQ(r.rejected[2].code, "unknown_field");
  EXPECT_EQ(r.rejected[2].id, unknown["id"]);
  EXPECT_EQ(r.rejected[9].id, "");  // 42 has no id at all
  for (auto& x : r.rejected) {
    std::printf("    rejected %s [%s]: %s\n", x.id.c_str(), x.code.c_str(), x.message.c_str());
    EXPECT_NE(x.message.find(" / "), std::string::npos) << "Chinese / English message";
  }
  auto q = events.Quarantine(100);
  ASSERT_EQ(q.size(), 10u);
  EXPECT_EQ(json::parse(q[2]["raw"].get<std::string>()), unknown) << "kept verbatim";
  EXPECT_EQ(q[2]["device_id"], "dev-9");
  // A resend of the same rejected events is answered the same way and stored once.
  r = events.Ingest("dev-9", batch);
  EXPECT_EQ(r.rejected.size(), 10u);
  EXPECT_EQ(r.duplicates, std::vector<std::string>{good});
  EXPECT_EQ(events.Count().quarantined, 10);
  EXPECT_EQ(events.Count().events, 1);
}

TEST_F(EventStoreTest, MalformedBatchesAreRefusedAsAWhole) {
  EventStore events(dir_, Key());
  auto status = [&](const json& body) -> std::pair<int, std::string> {
    try {
      events.Ingest("dev-1", body);
    } catch (const Error& error) {
      const protocol::ApiError e = protocol::FromError(error);  // what the API answers
      std::printf("    refused %d %s: %s\n", e.status(), e.code().c_str(), e.what());
      return {e.status(), e.code()};
    }
    return {200, ""};
  };
  EXPECT_EQ(status(json::array()), std::make_pair(400, std::string("bad_request")));
  EXPECT_EQ(status(json{{"events", json::array()}, {"extra", 1}}).second, "unknown_field");
  EXPECT_EQ(status(json{{"events", "x"}}).first, 400);
  std::vector<json> many(kMaxEventsPerBatch + 1, Access(store::NewOutboxId(), NowMs()));
  EXPECT_EQ(status(Batch(many)), std::make_pair(413, std::string("too_large")));
  EXPECT_EQ(status(Batch({})).first, 200);
  EXPECT_EQ(CodeOf([&] { events.Ingest("", Batch({})); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(events.Count().events, 0);
}

TEST_F(EventStoreTest, SnapshotsAreSealedFilesThatOnlyOpenForTheirEvent) {
  const int64_t t = NowMs() - 5000;
  const std::string id = store::NewOutboxId(), other = store::NewOutboxId();
  const auto jpeg = Jpeg(7);
  EventStore events(dir_, Key());
  events.Ingest("dev-1", Batch({WithSnapshot(Access(id, t), jpeg), Access(other, t)}));
  const fs::path file = events.SnapshotPath(id, t);
  ASSERT_TRUE(fs::exists(file)) << file;
  EXPECT_EQ(file.parent_path().parent_path().parent_path().parent_path(), dir_ / "snapshots");
  std::ifstream in(file, std::ios::binary);
  const std::vector<uint8_t> sealed((std::istreambuf_iterator<char>(in)), {});
  EXPECT_TRUE(crypto::IsSealed(sealed));
  EXPECT_EQ(sealed.size(), jpeg.size() + crypto::kSealOverhead);
  EXPECT_EQ(std::search(sealed.begin(), sealed.end(), jpeg.begin() + 100, jpeg.begin() + 132),
            sealed.end())
      << "no plaintext JPEG bytes on disk";
  EXPECT_EQ(fs::status(file).permissions() & (fs::perms::group_all | fs::perms::others_all),
            fs::perms::none);

  const auto back = events.Snapshot(id);
  EXPECT_EQ(back, jpeg);
  EXPECT_FALSE(cv::imdecode(back, cv::IMREAD_COLOR).empty());
  const EventRecord rec = events.Get(id);
  EXPECT_TRUE(rec.has_snapshot);
  EXPECT_EQ(rec.snapshot_bytes, int64_t(jpeg.size()));
  EXPECT_FALSE(ToJson(rec).contains("snapshot")) << "a reference, never the bytes";
  EXPECT_EQ(CodeOf([&] { events.Snapshot(other); }), ErrorCode::kNotFound);

  // The sealed file is bound to its event id: a swapped file does not open.
  fs::copy_file(file, events.SnapshotPath(other, t));
  {
    EventStore wrong_key(dir_, crypto::DataKey::Generate());
    EXPECT_EQ(CodeOf([&] { wrong_key.Snapshot(id); }), ErrorCode::kCrypto);
  }
  // Tampering with one byte is detected.
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(200);
    f.put('\x55');
  }
  EXPECT_EQ(CodeOf([&] { events.Snapshot(id); }), ErrorCode::kCrypto);
}

TEST_F(EventStoreTest, QueryFiltersPagesAndCursorsNewestFirst) {
  EventStore events(dir_, Key());
  const int64_t t0 = NowMs() - 3600 * 1000;
  std::vector<json> batch;
  for (int i = 0; i < 60; ++i) {
    const std::string decision = i % 10 == 0 ? "stranger" : (i % 3 == 0 ? "deny" : "open");
    json ev = Access(store::NewOutboxId(), t0 + i * 1000, decision,
                     decision == "stranger" ? "" : testing::Name("P", i % 4), i % 2);
    batch.push_back(ev);
  }
  batch.push_back({{"id", store::NewOutboxId()},
                   {"kind", "door_event"},
                   {"created_ms", t0 + 500},
                   {"payload", {{"door", 1}, {"event", "opened"}, {"time_ms", t0 + 500}}}});
  ASSERT_EQ(events.Ingest("dev-1", Batch(batch)).stored.size(), 61u);

  EventQuery q;
  q.limit = 1000;
  EXPECT_EQ(events.Query(q).total, 61);
  q.kind = "access";
  EXPECT_EQ(events.Query(q).total, 60);
  q.decision = "stranger";
  auto page = events.Query(q);
  EXPECT_EQ(page.total, 6);
  for (auto& e : page.items) EXPECT_EQ(e.person, "");
  q = {};
  q.door = "1";
  EXPECT_EQ(events.Query(q).total, 31);  // 30 access records + the door event
  q = {};
  q.person = "P1";
  page = events.Query(q);
  for (auto& e : page.items) EXPECT_EQ(e.person, "P1");
  EXPECT_EQ(page.total, 15);  // i = 1, 5, ..., 57 (no stranger has i % 4 == 1)
  q = {};
  q.from_ms = t0 + 10 * 1000;
  q.to_ms = t0 + 20 * 1000;
  page = events.Query(q);
  EXPECT_EQ(page.total, 10);
  EXPECT_EQ(page.items.front().time_ms, t0 + 19 * 1000) << "newest first";
  q = {};
  q.device = "dev-2";
  EXPECT_EQ(events.Query(q).total, 0);

  // Offset paging.
  q = {};
  q.kind = "access";
  q.limit = 25;
  q.offset = 50;
  page = events.Query(q);
  EXPECT_EQ(page.items.size(), 10u);
  EXPECT_EQ(page.items.back().time_ms, t0);
  // Cursor paging sees every event exactly once although new ones arrive in between.
  q.offset = 0;
  std::set<std::string> seen;
  page = events.Query(q);
  for (int pages = 0;; ++pages) {
    for (auto& e : page.items) EXPECT_TRUE(seen.insert(e.id).second) << e.id;
    if (page.next_cursor.empty()) break;
    events.Ingest("dev-1", Batch({Access(store::NewOutboxId(), NowMs())}));
    q.cursor = page.next_cursor;
    page = events.Query(q);
    ASSERT_LT(pages, 10);
  }
  EXPECT_EQ(seen.size(), 60u);
  q.cursor = "garbage";
  EXPECT_EQ(CodeOf([&] { events.Query(q); }), ErrorCode::kInvalidArgument);
  q.cursor.clear();
  q.limit = 0;
  EXPECT_EQ(CodeOf([&] { events.Query(q); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ToJson(events.Query(EventQuery{}))["items"].size(), 50u);
}

TEST_F(EventStoreTest, CsvExportIsUtf8WithBomAndOneRowPerEvent) {
  EventStore events(dir_, Key());
  const int64_t t = 1764060000123;  // 2025-11-25 08:40:00.123 UTC = 16:40:00 Beijing
  json alarm = {{"id", store::NewOutboxId()},
                {"kind", "alarm"},
                {"created_ms", t},
                {"payload",
                 {{"time_ms", t},
                  {"door", 0},
                  {"alarm_type", "forced_open"},
                  {"severity", "major"},
                  {"description", "非法开门 / door forced open"}}}};
  json evil = Access(store::NewOutboxId(), t + 1, "deny", "P2");
  evil["payload"]["reason"] = "=HYPERLINK(\"http://x\",\"a, b\")";
  events.Ingest("dev-1",
                Batch({alarm, evil, WithSnapshot(Access(store::NewOutboxId(), t + 2), Jpeg(3))}));
  std::ostringstream out;
  EXPECT_EQ(events.ExportCsv(EventQuery{}, out), 3u);
  const std::string csv = out.str();
  ASSERT_GE(csv.size(), 3u);
  EXPECT_EQ(csv.substr(0, 3), "\xEF\xBB\xBF");
  std::vector<std::string> lines;
  for (size_t p = 3, e; (e = csv.find("\r\n", p)) != std::string::npos; p = e + 2)
    lines.push_back(csv.substr(p, e - p));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_NE(lines[0].find("时间 / time (UTC+08:00)"), std::string::npos) << lines[0];
  EXPECT_NE(lines[3].find("2025-11-25 16:40:00"), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find("非法开门 / door forced open"), std::string::npos);
  EXPECT_NE(lines[3].find(",forced_open,"), std::string::npos);
  EXPECT_NE(lines[1].find("有 / yes"), std::string::npos) << "newest first, with snapshot";
  // A formula is neutralised and the comma inside it quoted.
  EXPECT_NE(lines[2].find("\"'=HYPERLINK(\"\"http://x\"\",\"\"a, b\"\")\""), std::string::npos)
      << lines[2];
  EventQuery only_alarms;
  only_alarms.kind = "alarm";
  std::ostringstream out2;
  EXPECT_EQ(events.ExportCsv(only_alarms, out2, 0), 1u);
  EXPECT_NE(out2.str().find("2025-11-25 08:40:00"), std::string::npos);
}

TEST_F(EventStoreTest, AlarmsFollowNewAcknowledgedClosed) {
  EventStore events(dir_, Key());
  const int64_t t = NowMs() - 10000;
  json alarm = {
      {"id", store::NewOutboxId()},
      {"kind", "alarm"},
      {"created_ms", t},
      {"payload", {{"time_ms", t}, {"door", 0}, {"alarm_type", "tamper"}, {"severity", "major"}}}};
  auto alarm_of = [&](const char* type, int64_t at) {
    return json{{"id", store::NewOutboxId()},
                {"kind", "alarm"},
                {"created_ms", at},
                {"payload", {{"time_ms", at}, {"door", 0}, {"alarm_type", type}}}};
  };
  // Access records never raise alarms themselves (the device sends the alarm record).
  auto r = events.Ingest(
      "dev-1", Batch({alarm, Access(store::NewOutboxId(), t + 1, "stranger", ""),
                      alarm_of("stranger", t + 1), Access(store::NewOutboxId(), t + 2, "spoof", ""),
                      alarm_of("spoof", t + 2), Access(store::NewOutboxId(), t + 3, "open")}));
  EXPECT_EQ(r.alarms_created, 3u);
  // A resent alarm does not raise a second one.
  EXPECT_EQ(events.Ingest("dev-1", Batch({alarm})).alarms_created, 0u);
  AlarmQuery aq;
  auto page = events.Alarms(aq);
  ASSERT_EQ(page.total, 3);
  EXPECT_EQ(page.items[0].type, "spoof");
  EXPECT_EQ(page.items[1].type, "stranger");
  EXPECT_EQ(page.items[2].type, "tamper");
  for (auto& a : page.items) EXPECT_EQ(a.state, AlarmState::kNew);
  const int64_t id = page.items[2].id;

  auto conflict = [&](AlarmState to) {
    try {
      events.SetAlarmState(id, to, "guard-wang");
    } catch (const Error& error) {
      const protocol::ApiError e = protocol::FromError(error);  // what the API answers
      std::printf("    refused %d %s: %s\n", e.status(), e.code().c_str(), e.what());
      return e.status() == 409 && e.code() == "conflict";
    }
    return false;
  };
  EXPECT_TRUE(conflict(AlarmState::kClosed)) << "new -> closed skips the acknowledgement";
  EXPECT_TRUE(conflict(AlarmState::kNew));
  EXPECT_EQ(CodeOf([&] { events.SetAlarmState(id, AlarmState::kAcknowledged, ""); }),
            ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { events.SetAlarmState(99999, AlarmState::kAcknowledged, "x"); }),
            ErrorCode::kNotFound);

  const int64_t before = NowMs();
  Alarm a = events.SetAlarmState(id, AlarmState::kAcknowledged, "guard-wang", "去现场查看");
  EXPECT_EQ(a.state, AlarmState::kAcknowledged);
  EXPECT_EQ(a.acknowledged_by, "guard-wang");
  EXPECT_GE(a.acknowledged_ms, before);
  EXPECT_EQ(a.acknowledge_note, "去现场查看");
  EXPECT_TRUE(conflict(AlarmState::kAcknowledged));
  a = events.SetAlarmState(id, AlarmState::kClosed, "manager-li", "误报 / false alarm");
  EXPECT_EQ(a.state, AlarmState::kClosed);
  EXPECT_EQ(a.closed_by, "manager-li");
  EXPECT_EQ(a.acknowledged_by, "guard-wang") << "history kept";
  EXPECT_TRUE(conflict(AlarmState::kAcknowledged));

  aq.state = AlarmState::kNew;
  EXPECT_EQ(events.Alarms(aq).total, 2);
  aq.state = AlarmState::kClosed;
  EXPECT_EQ(events.Alarms(aq).items.at(0).id, id);
  aq = {};
  aq.type = "spoof";
  EXPECT_EQ(events.Alarms(aq).total, 1);
  EXPECT_EQ(ToJson(events.GetAlarm(id))["state"], "closed");
  EXPECT_EQ(ParseAlarmState("acknowledged"), AlarmState::kAcknowledged);
  EXPECT_EQ(CodeOf([] { ParseAlarmState("done"); }), ErrorCode::kInvalidArgument);
}

// The terminal's outbox raises its own quota alarms (docs/outbox.md); sent as the uploader
// sends every item, they must be stored as alarms, not quarantined where no one on duty
// sees them (R3.1.2.5). Found by the partition soak with a 50,000-record backlog.
TEST_F(EventStoreTest, TheOutboxsOwnQuotaAlarmsAreStoredAsAlarms) {
  store::OutboxOptions o;
  o.quota_bytes = 20000;
  auto box = store::Outbox::Open(dir_ / "outbox.db", o);
  const std::vector<uint8_t> snap(1500, 7);
  for (int i = 0; i < 20 && !box->Stats().full; ++i)
    box->Append("access", json{{"n", i}}.dump(), snap);
  ASSERT_TRUE(box->Stats().full);
  std::vector<json> sent;
  for (const auto& item : box->Peek(1000)) {
    if (item.kind != "alarm") continue;
    sent.push_back({{"id", item.id},
                    {"kind", item.kind},
                    {"created_ms", std::chrono::duration_cast<std::chrono::milliseconds>(
                                       item.created.time_since_epoch())
                                       .count()},
                    {"payload", json::parse(item.payload)}});
  }
  ASSERT_EQ(sent.size(), 2u);
  EventStore events(dir_, Key());
  const auto r = events.Ingest("dev-1", Batch(sent));
  for (const auto& x : r.rejected) ADD_FAILURE() << x.code << ": " << x.message;
  EXPECT_EQ(r.stored.size(), 2u);
  EXPECT_EQ(r.alarms_created, 2u);
  AlarmQuery aq;
  aq.type = "outbox_near_full";
  EXPECT_EQ(events.Alarms(aq).total, 1);
  aq.type = "outbox_full";
  EXPECT_EQ(events.Alarms(aq).total, 1);
  EXPECT_EQ(events.Count().quarantined, 0);
}

// Kill safety: a child ingests in a loop and reports every batch Ingest acknowledged;
// after SIGKILL every acknowledged event (and its snapshot) is there.
TEST_F(EventStoreTest, NothingAcknowledgedIsLostOnKill9) {
  const auto jpeg = Jpeg(11);
  const crypto::DataKey key = Key();  // made before the fork: parent and child share it
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(fds[0]);
    try {
      EventStore events(dir_, key);
      for (int n = 0;; ++n) {
        std::vector<json> batch;
        for (int i = 0; i < 20; ++i) {
          json ev = Access(store::NewOutboxId(), NowMs() - 1000);
          batch.push_back(i % 5 == 0 ? WithSnapshot(ev, jpeg) : ev);
        }
        const auto r = events.Ingest("dev-k", Batch(batch));
        std::string line;
        for (auto& id : r.stored) line += id + "\n";
        if (::write(fds[1], line.data(), line.size()) != ssize_t(line.size())) ::_exit(3);
      }
    } catch (...) {
      ::_exit(2);
    }
  }
  ::close(fds[1]);
  std::string acked;
  char buf[4096];
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::count(acked.begin(), acked.end(), '\n') < 400 &&
         std::chrono::steady_clock::now() < deadline) {
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    acked.append(buf, size_t(n));
  }
  // Land the kill anywhere inside the next batch (files written, commit pending, ...).
  std::this_thread::sleep_for(std::chrono::microseconds(::getpid() % 40000));
  ::kill(child, SIGKILL);
  int status = 0;
  ::waitpid(child, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status)) << "child ended by itself: " << status;
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) acked.append(buf, size_t(n));
  ::close(fds[0]);
  acked.erase(acked.rfind('\n') + 1);  // a torn last line was never fully acknowledged

  std::vector<std::string> ids;
  std::istringstream lines(acked);
  for (std::string id; std::getline(lines, id);) ids.push_back(id);
  ASSERT_GE(ids.size(), 100u) << "the child acknowledged too little to test anything";
  EventStore events(dir_, Key());
  size_t snapshots = 0;
  for (auto& id : ids) {
    const EventRecord e = events.Get(id);  // throws kNotFound if lost
    if (e.has_snapshot) {
      EXPECT_EQ(events.Snapshot(id), jpeg);
      ++snapshots;
    }
  }
  EXPECT_GE(snapshots, ids.size() / 5);
  std::printf(
      "    %zu acknowledged events (%zu with snapshots) all present after kill -9; "
      "%lld stored in total\n",
      ids.size(), snapshots, (long long)events.Count().events);
}

}  // namespace
}  // namespace anju::server
