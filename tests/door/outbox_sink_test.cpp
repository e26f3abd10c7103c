// Door input events into a real outbox file: a DoorMonitor driven with synthetic time
// through tamper, fire and forced / held-open sequences, and a LoggingDoorController
// whose Poll() callback writes into the outbox.
#include "door/outbox_sink.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "door/logging_controller.h"
#include "door/monitor.h"
#include "store/outbox.h"
#include "testing.h"

namespace anju::door {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = DoorMonitor::Clock;
using nlohmann::json;

MonitorOptions Fast() {
  MonitorOptions o;
  o.held_open_limit = 10s;
  o.grant_grace = 1s;
  o.exit_grant = 5s;
  return o;
}

struct Record {
  std::string kind;
  json j;
};

std::vector<Record> Records(const store::Outbox& box) {
  std::vector<Record> out;
  for (const auto& it : box.Peek(1000)) out.push_back({it.kind, json::parse(it.payload)});
  return out;
}

struct OutboxSinkTest : ::testing::Test {
  fs::path dir = testing::TempDir("door-outbox");
  fs::path file = dir / "outbox.db";
  ~OutboxSinkTest() override { fs::remove_all(dir); }
};

TEST_F(OutboxSinkTest, MonitorAlarmsBecomeAlarmRecords) {
  std::vector<std::string> ids;
  {
    auto box = store::Outbox::Open(file);
    OutboxSink sink(*box, "T-01");
    DoorMonitor m(1, "converter 127.0.0.1:1502", Fast());
    auto t = Clock::now();
    auto feed = [&](const InputState& in, Clock::time_point now) {
      for (auto& id : sink.RecordAll(m.OnInputs(in, now))) ids.push_back(id);
    };
    feed({}, t);                                            // nothing
    feed({.tamper = true}, t + 1s);                         // tamper
    feed({}, t + 2s);                                       // tamper cleared
    feed({.fire_alarm = true}, t + 3s);                     // fire alarm
    feed({.door_open = true, .fire_alarm = true}, t + 4s);  // opened (released)
    feed({}, t + 5s);                                       // fire cleared, door closed
    feed({.door_open = true}, t + 20s);                     // forced open
    for (auto& id : sink.RecordAll(m.Tick(t + 31s))) ids.push_back(id);  // held open
    feed({.emergency = true}, t + 32s);                                  // door closed + emergency
    EXPECT_EQ(sink.recorded(), ids.size());
  }
  // Reopened: the records are durable, in order.
  auto box = store::Outbox::Open(file);
  auto recs = Records(*box);
  ASSERT_EQ(recs.size(), ids.size());
  const std::vector<std::pair<std::string, std::string>> want = {
      {"alarm", "tamper"},
      {"door_event", "tamper_cleared"},
      {"alarm", "fire_alarm"},
      {"door_event", "door_opened"},
      {"door_event", "fire_alarm_cleared"},
      {"door_event", "door_closed"},
      {"alarm", "forced_open"},
      {"alarm", "held_open"},
      {"alarm", "emergency"},
      {"door_event", "door_closed"}};
  ASSERT_EQ(recs.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(recs[i].kind, want[i].first);
    const json& j = recs[i].j;
    EXPECT_EQ(j["event"], want[i].second);
    EXPECT_EQ(j["door"], 1);
    EXPECT_EQ(j["terminal"], "T-01");
    EXPECT_EQ(j["source"], "converter 127.0.0.1:1502");
    EXPECT_EQ(j["alarm"], want[i].first == "alarm");
    EXPECT_EQ(j.contains("severity"), want[i].first == "alarm");
    EXPECT_TRUE(j["time"].get<std::string>().ends_with("Z"));
    EXPECT_GT(j["time_ms"].get<int64_t>(), 1600000000000);
    EXPECT_FALSE(j["description_zh"].get<std::string>().empty());
    EXPECT_FALSE(j["description_en"].get<std::string>().empty());
    // Chinese first, then English.
    EXPECT_EQ(j["description"], j["description_zh"].get<std::string>() + " / " +
                                    j["description_en"].get<std::string>());
  }
  EXPECT_EQ(recs[0].j["alarm_type"], "tamper");
  EXPECT_EQ(recs[0].j["severity"], "major");
  EXPECT_EQ(recs[0].j["description_zh"], "防拆报警");
  EXPECT_EQ(recs[2].j["severity"], "critical");
  EXPECT_EQ(recs[6].j["alarm_type"], "forced_open");
  EXPECT_EQ(recs[6].j["description"], "非法开门 / door forced open");
  EXPECT_EQ(recs[7].j["alarm_type"], "held_open");
  EXPECT_EQ(recs[7].j["severity"], "minor");
  EXPECT_EQ(recs[8].j["severity"], "critical");
  // The monitor's own text travels along.
  EXPECT_EQ(recs[6].j["detail"], "非法开门 / door forced open");
}

TEST_F(OutboxSinkTest, ControllerCallbackWritesEachPoll) {
  auto box = store::Outbox::Open(file);
  OutboxSink sink(*box);
  LoggingDoorController door(2, Fast());
  door.SetEventCallback(sink.Callback());
  door.Poll();
  door.SetInputs(0, {.door_open = true});  // no grant: forced open
  door.SetInputs(1, {.tamper = true, .fire_alarm = true});
  auto events = door.Poll();
  ASSERT_EQ(events.size(), 3u);
  auto items = box->Peek(100);
  ASSERT_EQ(items.size(), 3u);
  std::multiset<std::pair<int, std::string>> got;
  for (const auto& it : items) {
    EXPECT_EQ(it.kind, "alarm");
    auto j = json::parse(it.payload);
    EXPECT_FALSE(j.contains("terminal"));
    EXPECT_EQ(j["source"], "log");
    got.insert({j["door"].get<int>(), j["alarm_type"].get<std::string>()});
    // The record's time is the event's wall-clock time.
    EXPECT_LE(std::chrono::system_clock::now() - it.created, 60s);
  }
  EXPECT_EQ(got, (std::multiset<std::pair<int, std::string>>{
                     {0, "forced_open"}, {1, "fire_alarm"}, {1, "tamper"}}));
  door.Open(0, 100ms);
  door.SetInputs(0, {});
  door.Poll();
  EXPECT_EQ(box->Peek(100).back().kind, "door_event");  // door closed
  EXPECT_EQ(sink.failures(), 0u);
  EXPECT_EQ(sink.recorded(), 4u);
}

TEST_F(OutboxSinkTest, FullOutboxDoesNotThrowFromCallback) {
  store::OutboxOptions o;
  o.quota_bytes = 200;  // smaller than one record, and no reserve
  o.record_reserve_bytes = 0;
  auto box = store::Outbox::Open(file, o);
  OutboxSink sink(*box);
  DoorEvent e{DoorEventKind::kTamper, 0, std::chrono::system_clock::now(), "test", "tamper"};
  EXPECT_THROW(sink.Record(e), Error);
  auto cb = sink.Callback();
  EXPECT_NO_THROW(cb(e));
  EXPECT_EQ(sink.failures(), 1u);
  EXPECT_EQ(box->Stats().count, 0);
}

TEST(OutboxSinkMapping, KindsAndSeverities) {
  EXPECT_STREQ(OutboxKindFor(DoorEventKind::kTamper), "alarm");
  EXPECT_STREQ(OutboxKindFor(DoorEventKind::kFireAlarm), "alarm");
  EXPECT_STREQ(OutboxKindFor(DoorEventKind::kForcedOpen), "alarm");
  EXPECT_STREQ(OutboxKindFor(DoorEventKind::kHeldOpen), "alarm");
  EXPECT_STREQ(OutboxKindFor(DoorEventKind::kEmergency), "alarm");
  EXPECT_STREQ(OutboxKindFor(DoorEventKind::kExitButton), "door_event");
  EXPECT_STREQ(OutboxKindFor(DoorEventKind::kFireAlarmCleared), "door_event");
  EXPECT_STREQ(AlarmSeverity(DoorEventKind::kDoorOpened), "");
  DoorEvent e{DoorEventKind::kExitButton, 3,
              std::chrono::system_clock::time_point(std::chrono::milliseconds(1700000000123)),
              "gpio", "bad utf-8 \xff"};
  auto j = json::parse(DoorEventJson(e));
  EXPECT_EQ(j["time"], "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(j["time_ms"], 1700000000123);
  EXPECT_EQ(j["event"], "exit_button");
  EXPECT_FALSE(j.contains("severity"));
}

}  // namespace
}  // namespace anju::door
