// The events service on a real events.db in a temporary directory, without HTTP: what a
// caller sees when an upload, a query or an alarm change is refused (anju::Error codes, not
// HTTP statuses), quarantine by site, video references and the retention primitives
// (R3.2.1.1, R3.3.2.6; docs/events-and-retention.md).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "server/events/event_store.h"
#include "store/outbox.h"
#include "testing.h"

namespace anju::server {
namespace {

namespace fs = std::filesystem;
using anju::testing::CodeOf;
using anju::testing::ReasonOf;
using nlohmann::json;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json Alarm(const std::string& id, int64_t time_ms, const std::string& type) {
  return {{"id", id},
          {"kind", "alarm"},
          {"created_ms", time_ms},
          {"payload", {{"time_ms", time_ms}, {"alarm_type", type}, {"severity", "major"}}}};
}

json Access(const std::string& id, int64_t time_ms) {
  return {{"id", id},
          {"kind", "access"},
          {"created_ms", time_ms},
          {"payload", {{"time_ms", time_ms}, {"decision", "open"}, {"door", 1}}}};
}

json Batch(std::vector<json> events) {
  return {{"events", events}};
}

class EventServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = anju::testing::TempDir("event-service");
    events_ = std::make_unique<EventStore>(dir_, crypto::DataKey::Generate());
  }
  void TearDown() override {
    events_.reset();
    fs::remove_all(dir_);
  }
  fs::path dir_;
  std::unique_ptr<EventStore> events_;
};

TEST_F(EventServiceTest, RefusedBatchesAreErrorsWithTheirCodes) {
  EXPECT_EQ(CodeOf([&] { events_->Ingest("dev-1", json::array()); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(ReasonOf([&] {
              events_->Ingest("dev-1", {{"events", json::array()}, {"x", 1}});
            }),
            "unknown_field");
  EXPECT_EQ(CodeOf([&] {
              events_->Ingest("dev-1", {{"events", 3}});
            }),
            ErrorCode::kInvalidArgument);
  std::vector<json> many(kMaxEventsPerBatch + 1, Access(store::NewOutboxId(), NowMs()));
  EXPECT_EQ(CodeOf([&] { events_->Ingest("dev-1", Batch(many)); }), ErrorCode::kTooLarge);
  EXPECT_EQ(events_->Count().events, 0) << "a refused batch stores nothing";
}

TEST_F(EventServiceTest, QueriesRefuseBadLimitsCursorsAndUnknownIds) {
  EventQuery q;
  q.limit = 0;
  EXPECT_EQ(CodeOf([&] { events_->Query(q); }), ErrorCode::kInvalidArgument);
  q.limit = 10;
  q.cursor = "12:x";
  EXPECT_EQ(CodeOf([&] { events_->Query(q); }), ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf([&] { events_->Get(store::NewOutboxId()); }), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf([&] { events_->Snapshot(store::NewOutboxId()); }), ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf([&] { events_->GetAlarm(42); }), ErrorCode::kNotFound);
}

TEST_F(EventServiceTest, AlarmStateChangesAreConflictsOutOfOrder) {
  const int64_t t = NowMs() - 5000;
  ASSERT_EQ(
      events_->Ingest("dev-1", Batch({Alarm(store::NewOutboxId(), t, "tamper")})).alarms_created,
      1u);
  const int64_t id = events_->Alarms({}).items.at(0).id;
  EXPECT_EQ(CodeOf([&] { events_->SetAlarmState(id, AlarmState::kClosed, "guard"); }),
            ErrorCode::kConflict);
  EXPECT_EQ(CodeOf([&] { events_->SetAlarmState(99, AlarmState::kAcknowledged, "guard"); }),
            ErrorCode::kNotFound);
  const auto acked = events_->SetAlarmState(id, AlarmState::kAcknowledged, "guard", "seen");
  EXPECT_EQ(acked.state, AlarmState::kAcknowledged);
  EXPECT_EQ(acked.acknowledged_by, "guard");
  EXPECT_EQ(acked.acknowledge_note, "seen");
  EXPECT_EQ(CodeOf([&] { events_->SetAlarmState(id, AlarmState::kAcknowledged, "guard"); }),
            ErrorCode::kConflict);
  const auto closed = events_->SetAlarmState(id, AlarmState::kClosed, "chief", "done");
  EXPECT_EQ(closed.state, AlarmState::kClosed);
  EXPECT_EQ(closed.closed_by, "chief");
  AlarmQuery open;
  open.state = AlarmState::kNew;
  EXPECT_EQ(events_->Alarms(open).total, 0);
}

TEST_F(EventServiceTest, QuarantineIsListedPerDeviceScope) {
  json bad = Access(store::NewOutboxId(), NowMs());
  bad["payload"]["decision"] = "maybe";
  events_->Ingest("dev-1", Batch({bad}));
  json other = Access(store::NewOutboxId(), NowMs());
  other["kind"] = "unknown";
  events_->Ingest("dev-2", Batch({other}));
  EXPECT_EQ(events_->Quarantine().size(), 2u);
  const std::vector<std::string> scope{"dev-2"};
  const auto mine = events_->Quarantine(100, 0, scope);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0]["device_id"], "dev-2");
  EXPECT_EQ(events_->QuarantineCount(scope), 1);
  EXPECT_EQ(events_->QuarantineCount(std::vector<std::string>{}), 0) << "no sites: nothing";
}

TEST_F(EventServiceTest, RetentionKeepsOpenAlarmsAndVideoReferencesAreKeptInOrder) {
  const int64_t t = NowMs() - 10 * 24 * 3600 * 1000LL;
  const std::string open_alarm = store::NewOutboxId(), closed_alarm = store::NewOutboxId();
  events_->Ingest("dev-1",
                  Batch({Alarm(open_alarm, t, "tamper"), Alarm(closed_alarm, t + 1, "forced_open"),
                         Access(store::NewOutboxId(), t + 2)}));
  for (const auto& a : events_->Alarms({}).items)
    if (a.event_id == closed_alarm) {
      events_->SetAlarmState(a.id, AlarmState::kAcknowledged, "guard");
      events_->SetAlarmState(a.id, AlarmState::kClosed, "guard");
    }
  EXPECT_EQ(events_->DeleteEventsBefore(NowMs(), 100).size(), 3u);
  const auto left = events_->Alarms({});
  ASSERT_EQ(left.total, 1) << "the closed alarm went with its event, the open one stays";
  EXPECT_EQ(left.items[0].event_id, open_alarm);

  EXPECT_EQ(CodeOf([&] {
              events_->AddVideoRef({0, "dev-1", "1", "", 5, 4, "rtsp://x"});
            }),
            ErrorCode::kInvalidArgument);
  const int64_t a = events_->AddVideoRef({0, "dev-1", "1", "", t, t + 1000, "rtsp://nvr/1"});
  const int64_t b = events_->AddVideoRef({0, "dev-1", "1", "", t - 10, t, "rtsp://nvr/0"});
  const auto refs = events_->VideoRefs();
  ASSERT_EQ(refs.size(), 2u);
  EXPECT_EQ(refs[0].id, b) << "oldest start first";
  EXPECT_EQ(refs[1].uri, "rtsp://nvr/1");
  EXPECT_EQ(events_->DeleteVideoRefsBefore(t, 10), std::vector<int64_t>{b});
  EXPECT_EQ(events_->VideoRefs().at(0).id, a);
  EXPECT_EQ(events_->Count().video_refs, 1);
}

}  // namespace
}  // namespace anju::server
