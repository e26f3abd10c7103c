// Door input events: what a terminal puts into its outbox as records and alarms.
#pragma once

#include <chrono>
#include <string>

namespace anju::door {

enum class DoorEventKind {
  kDoorOpened,  // contact opened after a grant, exit button or while released
  kDoorClosed,  // contact closed again
  kForcedOpen,  // contact opened without any grant (alarm)
  kHeldOpen,    // open longer than the allowed time (alarm)
  kExitButton,  // request-to-exit pressed
  kTamper,      // tamper input active (alarm, R3.2.2.4)
  kTamperCleared,
  kFireAlarm,  // fire alarm input active: doors released (R3.2.3.1)
  kFireAlarmCleared,
  kEmergency,  // wired emergency input (spare input) active (R3.3.3.4)
  kEmergencyCleared,
  kFault,         // the controller / converter cannot be reached or refused a command
  kFaultCleared,  // it answers again
};

// Stable snake_case name, e.g. "forced_open"; used in logs and outbox records.
const char* DoorEventKindName(DoorEventKind kind);
// True for the kinds that are alarms rather than plain records.
bool IsAlarm(DoorEventKind kind);

struct DoorEvent {
  DoorEventKind kind = DoorEventKind::kFault;
  int door = 0;                                // door / output index
  std::chrono::system_clock::time_point time;  // wall clock, for the record
  std::string source;                          // e.g. "converter 10.0.0.5:502", "gpio", "log"
  std::string detail;                          // free text for people (Chinese first)
};

// Logical state of the inputs of one door (1 = active).
struct InputState {
  bool door_open = false;    // door contact: true = door open
  bool exit_button = false;  // request-to-exit
  bool tamper = false;
  bool fire_alarm = false;
  bool emergency = false;  // spare input
  bool operator==(const InputState&) const = default;
};

}  // namespace anju::door
