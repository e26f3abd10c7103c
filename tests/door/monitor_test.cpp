// DoorMonitor (forced / held-open derivation, input edges) with synthetic time, and the
// logging driver end to end.
#include <gtest/gtest.h>

#include <thread>

#include "core/error.h"
#include "door/logging_controller.h"
#include "door/monitor.h"

namespace anju::door {
namespace {

using namespace std::chrono_literals;
using Clock = DoorMonitor::Clock;

std::vector<DoorEventKind> Kinds(const std::vector<DoorEvent>& events) {
  std::vector<DoorEventKind> k;
  for (const auto& e : events) k.push_back(e.kind);
  return k;
}

MonitorOptions Fast() {
  MonitorOptions o;
  o.held_open_limit = 10s;
  o.grant_grace = 1s;
  o.exit_grant = 5s;
  return o;
}

TEST(DoorMonitor, ForcedOpenWithoutGrant) {
  DoorMonitor m(0, "test", Fast());
  auto t = Clock::now();
  EXPECT_TRUE(m.OnInputs({}, t).empty());
  InputState open{.door_open = true};
  EXPECT_EQ(Kinds(m.OnInputs(open, t + 1s)), std::vector{DoorEventKind::kForcedOpen});
  EXPECT_TRUE(IsAlarm(DoorEventKind::kForcedOpen));
  EXPECT_EQ(Kinds(m.OnInputs({}, t + 2s)), std::vector{DoorEventKind::kDoorClosed});
}

TEST(DoorMonitor, GrantedOpenThenHeldOpen) {
  DoorMonitor m(0, "test", Fast());
  auto t = Clock::now();
  m.OnInputs({}, t);
  m.OnGrant(t, 3s);
  InputState open{.door_open = true};
  EXPECT_EQ(Kinds(m.OnInputs(open, t + 2s)), std::vector{DoorEventKind::kDoorOpened});
  EXPECT_TRUE(m.Tick(t + 11s).empty());  // 9 s open: under the 10 s limit
  EXPECT_EQ(Kinds(m.Tick(t + 12s)), std::vector{DoorEventKind::kHeldOpen});
  EXPECT_TRUE(m.Tick(t + 20s).empty());  // reported once
  EXPECT_EQ(Kinds(m.OnInputs({}, t + 21s)), std::vector{DoorEventKind::kDoorClosed});
  // The grant (3 s + 1 s grace) is long over: opening again is forced.
  EXPECT_EQ(Kinds(m.OnInputs(open, t + 22s)), std::vector{DoorEventKind::kForcedOpen});
}

TEST(DoorMonitor, GraceAfterPulseAndExitButton) {
  DoorMonitor m(0, "test", Fast());
  auto t = Clock::now();
  m.OnInputs({}, t);
  m.OnGrant(t, 3s);
  InputState open{.door_open = true};
  // 3.5 s: the pulse ended but the 1 s grace still counts.
  EXPECT_EQ(Kinds(m.OnInputs(open, t + 3500ms)), std::vector{DoorEventKind::kDoorOpened});
  m.OnInputs({}, t + 4s);
  InputState exit{.exit_button = true};
  EXPECT_EQ(Kinds(m.OnInputs(exit, t + 10s)), std::vector{DoorEventKind::kExitButton});
  InputState exit_open{.door_open = true, .exit_button = true};
  EXPECT_EQ(Kinds(m.OnInputs(exit_open, t + 11s)), std::vector{DoorEventKind::kDoorOpened});
}

TEST(DoorMonitor, HoldOpenAndFireSuppressAlarms) {
  DoorMonitor m(0, "test", Fast());
  auto t = Clock::now();
  m.OnInputs({}, t);
  m.OnHoldOpen(t);
  InputState open{.door_open = true};
  EXPECT_EQ(Kinds(m.OnInputs(open, t + 1s)), std::vector{DoorEventKind::kDoorOpened});
  EXPECT_TRUE(m.Tick(t + 60s).empty());  // latched: no held-open alarm
  m.OnLock(t + 60s);
  EXPECT_EQ(Kinds(m.Tick(t + 71s)), std::vector{DoorEventKind::kHeldOpen});
  m.OnInputs({}, t + 72s);

  InputState fire{.fire_alarm = true};
  EXPECT_EQ(Kinds(m.OnInputs(fire, t + 80s)), std::vector{DoorEventKind::kFireAlarm});
  InputState fire_open{.door_open = true, .fire_alarm = true};
  EXPECT_EQ(Kinds(m.OnInputs(fire_open, t + 81s)), std::vector{DoorEventKind::kDoorOpened});
  EXPECT_TRUE(m.Tick(t + 200s).empty());
}

TEST(DoorMonitor, TamperEmergencyAndFaultEdges) {
  DoorMonitor m(0, "test", Fast());
  auto t = Clock::now();
  m.OnInputs({}, t);
  EXPECT_EQ(Kinds(m.OnInputs({.tamper = true, .emergency = true}, t + 1s)),
            (std::vector{DoorEventKind::kTamper, DoorEventKind::kEmergency}));
  EXPECT_TRUE(m.OnInputs({.tamper = true, .emergency = true}, t + 2s).empty());
  EXPECT_EQ(Kinds(m.OnInputs({}, t + 3s)),
            (std::vector{DoorEventKind::kTamperCleared, DoorEventKind::kEmergencyCleared}));
  ASSERT_TRUE(m.OnFault("gone"));
  EXPECT_FALSE(m.OnFault("still gone"));
  auto back = m.OnHealthy();
  ASSERT_TRUE(back);
  EXPECT_EQ(back->kind, DoorEventKind::kFaultCleared);
  EXPECT_FALSE(m.OnHealthy());
  EXPECT_STREQ(DoorEventKindName(DoorEventKind::kHeldOpen), "held_open");
}

TEST(LoggingDoorController, CommandsStateAndEvents) {
  LoggingDoorController door(2, Fast());
  std::vector<DoorEvent> seen;
  door.SetEventCallback([&](const DoorEvent& e) { seen.push_back(e); });
  EXPECT_THROW(door.Open(2, 1s), Error);
  EXPECT_THROW(door.Open(0, 0ms), Error);
  door.Poll();
  door.Open(0, 200ms);
  EXPECT_TRUE(door.released(0));
  EXPECT_FALSE(door.released(1));
  door.SetInputs(0, {.door_open = true});
  EXPECT_EQ(Kinds(door.Poll()), std::vector{DoorEventKind::kDoorOpened});
  std::this_thread::sleep_for(250ms);
  EXPECT_FALSE(door.released(0));
  door.HoldOpen(1);
  EXPECT_TRUE(door.released(1));
  door.Lock(1);
  EXPECT_FALSE(door.released(1));
  door.SetInputs(1, {.fire_alarm = true});
  EXPECT_TRUE(door.released(1));  // fire alarm keeps it released after Lock
  auto events = door.Poll();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].door, 1);
  EXPECT_EQ(events[0].kind, DoorEventKind::kFireAlarm);
  EXPECT_EQ(seen.size(), 2u);
}

}  // namespace
}  // namespace anju::door
