#include "door/event.h"

namespace anju::door {

const char* DoorEventKindName(DoorEventKind kind) {
  switch (kind) {
    case DoorEventKind::kDoorOpened:
      return "door_opened";
    case DoorEventKind::kDoorClosed:
      return "door_closed";
    case DoorEventKind::kForcedOpen:
      return "forced_open";
    case DoorEventKind::kHeldOpen:
      return "held_open";
    case DoorEventKind::kExitButton:
      return "exit_button";
    case DoorEventKind::kTamper:
      return "tamper";
    case DoorEventKind::kTamperCleared:
      return "tamper_cleared";
    case DoorEventKind::kFireAlarm:
      return "fire_alarm";
    case DoorEventKind::kFireAlarmCleared:
      return "fire_alarm_cleared";
    case DoorEventKind::kEmergency:
      return "emergency";
    case DoorEventKind::kEmergencyCleared:
      return "emergency_cleared";
    case DoorEventKind::kFault:
      return "fault";
    case DoorEventKind::kFaultCleared:
      return "fault_cleared";
  }
  return "unknown";
}

bool IsAlarm(DoorEventKind kind) {
  switch (kind) {
    case DoorEventKind::kForcedOpen:
    case DoorEventKind::kHeldOpen:
    case DoorEventKind::kTamper:
    case DoorEventKind::kFireAlarm:
    case DoorEventKind::kEmergency:
    case DoorEventKind::kFault:
      return true;
    default:
      return false;
  }
}

}  // namespace anju::door
