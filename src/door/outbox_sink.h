// OutboxSink: door input events into the terminal's durable outbox ("events
// from inputs become records and alarms in the terminal's outbox").
//
// Every DoorEvent becomes one outbox record. Alarms (IsAlarm: tamper, fire alarm, door
// forced open, door held open too long, emergency input, controller fault) get kind
// "alarm" with an alarm type and a severity; every other input change (door opened /
// closed, exit button, the "cleared" edges) gets kind "door_event". The JSON payload:
//
//   {"door": 0, "event": "forced_open", "alarm": true, "alarm_type": "forced_open",
//    "severity": "major", "time": "2025-05-01T08:30:00.123Z", "time_ms": 1746088200123,
//    "source": "converter 10.0.0.5:502", "terminal": "T-01",
//    "description": "非法开门 / door forced open", "description_zh": "非法开门",
//    "description_en": "door forced open", "detail": "<the monitor's text>"}
//
// ("alarm_type" and "severity" only for alarms; "terminal" only when set.)
#pragma once

#include <atomic>
#include <string>
#include <string_view>
#include <vector>

#include "door/controller.h"
#include "door/event.h"
#include "store/outbox.h"

namespace anju::door {

// "alarm" or "door_event".
const char* OutboxKindFor(DoorEventKind kind);
// "critical" (fire alarm, emergency), "major" (tamper, forced open), "minor" (held open,
// controller fault); "" for events that are not alarms.
const char* AlarmSeverity(DoorEventKind kind);
// The record's JSON payload (see above).
std::string DoorEventJson(const DoorEvent& event, std::string_view terminal = {});

class OutboxSink {
 public:
  explicit OutboxSink(store::Outbox& outbox, std::string terminal = "");

  // Appends the event's record and returns its outbox id once durable. Throws what
  // Outbox::Append throws (e.g. Error(kUnavailable) when the outbox is full).
  std::string Record(const DoorEvent& event);
  // Records each event of a Poll() in order; returns the ids.
  std::vector<std::string> RecordAll(const std::vector<DoorEvent>& events);
  // A callback for DoorController::SetEventCallback: never throws (it runs on the
  // EventPoller thread); a failed append is logged and counted in failures().
  DoorController::EventCallback Callback();

  size_t recorded() const { return recorded_; }
  size_t failures() const { return failures_; }

 private:
  store::Outbox& outbox_;
  std::string terminal_;
  std::atomic<size_t> recorded_{0};
  std::atomic<size_t> failures_{0};
};

}  // namespace anju::door
