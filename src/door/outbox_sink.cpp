#include "door/outbox_sink.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <nlohmann/json.hpp>

namespace anju::door {

namespace {

struct Text {
  const char* zh;
  const char* en;
};

Text Describe(DoorEventKind kind) {
  switch (kind) {
    case DoorEventKind::kDoorOpened:
      return {"门已打开", "door opened"};
    case DoorEventKind::kDoorClosed:
      return {"门已关闭", "door closed"};
    case DoorEventKind::kForcedOpen:
      return {"非法开门", "door forced open"};
    case DoorEventKind::kHeldOpen:
      return {"门长时间未关", "door held open too long"};
    case DoorEventKind::kExitButton:
      return {"出门按钮", "exit button pressed"};
    case DoorEventKind::kTamper:
      return {"防拆报警", "tamper alarm"};
    case DoorEventKind::kTamperCleared:
      return {"防拆恢复", "tamper cleared"};
    case DoorEventKind::kFireAlarm:
      return {"消防报警，门已释放", "fire alarm, doors released"};
    case DoorEventKind::kFireAlarmCleared:
      return {"消防报警解除", "fire alarm cleared"};
    case DoorEventKind::kEmergency:
      return {"紧急报警", "emergency alarm input"};
    case DoorEventKind::kEmergencyCleared:
      return {"紧急报警解除", "emergency alarm cleared"};
    case DoorEventKind::kFault:
      return {"门控设备故障", "door controller fault"};
    case DoorEventKind::kFaultCleared:
      return {"门控设备恢复", "door controller reachable again"};
  }
  return {"未知门禁事件", "unknown door event"};
}

std::string IsoUtc(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  const std::time_t secs = std::time_t(ms / 1000 - (ms % 1000 < 0 ? 1 : 0));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, int(((ms % 1000) + 1000) % 1000));
  return out;
}

}  // namespace

const char* OutboxKindFor(DoorEventKind kind) {
  return IsAlarm(kind) ? "alarm" : "door_event";
}

const char* AlarmSeverity(DoorEventKind kind) {
  switch (kind) {
    case DoorEventKind::kFireAlarm:
    case DoorEventKind::kEmergency:
      return "critical";
    case DoorEventKind::kTamper:
    case DoorEventKind::kForcedOpen:
      return "major";
    case DoorEventKind::kHeldOpen:
    case DoorEventKind::kFault:
      return "minor";
    default:
      return "";
  }
}

std::string DoorEventJson(const DoorEvent& e, std::string_view terminal) {
  const Text text = Describe(e.kind);
  const auto time =
      e.time == std::chrono::system_clock::time_point{} ? std::chrono::system_clock::now() : e.time;
  nlohmann::json j;
  j["door"] = e.door;
  j["event"] = DoorEventKindName(e.kind);
  j["alarm"] = IsAlarm(e.kind);
  if (IsAlarm(e.kind)) {
    j["alarm_type"] = DoorEventKindName(e.kind);
    j["severity"] = AlarmSeverity(e.kind);
  }
  j["time"] = IsoUtc(time);
  j["time_ms"] =
      std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch()).count();
  j["source"] = e.source;
  if (!terminal.empty()) j["terminal"] = terminal;
  j["description"] = std::string(text.zh) + " / " + text.en;
  j["description_zh"] = text.zh;
  j["description_en"] = text.en;
  j["detail"] = e.detail;
  // Invalid UTF-8 in a driver's text must not make the record unwritable.
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

OutboxSink::OutboxSink(store::Outbox& outbox, std::string terminal)
    : outbox_(outbox), terminal_(std::move(terminal)) {}

std::string OutboxSink::Record(const DoorEvent& event) {
  std::string id =
      outbox_.Append(OutboxKindFor(event.kind), DoorEventJson(event, terminal_), {}, event.time);
  ++recorded_;
  return id;
}

std::vector<std::string> OutboxSink::RecordAll(const std::vector<DoorEvent>& events) {
  std::vector<std::string> ids;
  ids.reserve(events.size());
  for (const auto& e : events) ids.push_back(Record(e));
  return ids;
}

DoorController::EventCallback OutboxSink::Callback() {
  return [this](const DoorEvent& e) {
    try {
      Record(e);
    } catch (const std::exception& ex) {
      ++failures_;
      spdlog::error("door {} event {} not written to the outbox: {}", e.door,
                    DoorEventKindName(e.kind), ex.what());
    }
  };
}

}  // namespace anju::door
