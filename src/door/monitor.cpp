#include "door/monitor.h"

namespace anju::door {

DoorMonitor::DoorMonitor(int door, std::string source, MonitorOptions options)
    : door_(door), source_(std::move(source)), options_(options) {}

DoorEvent DoorMonitor::Make(DoorEventKind kind, std::string detail) const {
  return DoorEvent{kind, door_, std::chrono::system_clock::now(), source_, std::move(detail)};
}

void DoorMonitor::OnGrant(Clock::time_point now, std::chrono::milliseconds duration) {
  auto until = now + duration + options_.grant_grace;
  if (until > grant_until_) grant_until_ = until;
}

void DoorMonitor::OnHoldOpen(Clock::time_point) {
  latched_ = true;
}

void DoorMonitor::OnLock(Clock::time_point now) {
  latched_ = false;
  grant_until_ = now + options_.grant_grace;
  // A door that stood open while latched starts its held-open clock at the lock.
  if (inputs_.door_open) open_since_ = now;
}

bool DoorMonitor::granted(Clock::time_point now) const {
  return latched_ || inputs_.fire_alarm || now <= grant_until_;
}

std::vector<DoorEvent> DoorMonitor::OnInputs(const InputState& in, Clock::time_point now) {
  std::vector<DoorEvent> out;
  const InputState prev = have_inputs_ ? inputs_ : InputState{};
  const bool first = !have_inputs_;
  have_inputs_ = true;

  // Order matters: fire and exit button grant passage before the contact is judged.
  if (in.fire_alarm && !prev.fire_alarm)
    out.push_back(
        Make(DoorEventKind::kFireAlarm, "消防报警，门已释放 / fire alarm, doors released"));
  if (!in.fire_alarm && prev.fire_alarm)
    out.push_back(Make(DoorEventKind::kFireAlarmCleared, "消防报警解除 / fire alarm cleared"));
  if (in.exit_button && !prev.exit_button) {
    out.push_back(Make(DoorEventKind::kExitButton, "出门按钮 / exit button"));
    OnGrant(now, options_.exit_grant);
  }
  if (in.tamper && !prev.tamper) out.push_back(Make(DoorEventKind::kTamper, "防拆报警 / tamper"));
  if (!in.tamper && prev.tamper)
    out.push_back(Make(DoorEventKind::kTamperCleared, "防拆恢复 / tamper cleared"));
  if (in.emergency && !prev.emergency)
    out.push_back(Make(DoorEventKind::kEmergency, "紧急报警输入 / emergency input"));
  if (!in.emergency && prev.emergency)
    out.push_back(Make(DoorEventKind::kEmergencyCleared, "紧急报警解除 / emergency cleared"));

  inputs_ = in;
  if (in.door_open && !prev.door_open) {
    open_since_ = now;
    held_reported_ = false;
    if (first) {
      // Open at start-up: no history, so no forced-open verdict; the held-open clock runs.
    } else if (granted(now)) {
      out.push_back(Make(DoorEventKind::kDoorOpened, "门已打开 / door opened"));
    } else {
      out.push_back(Make(DoorEventKind::kForcedOpen, "非法开门 / door forced open"));
    }
  }
  if (!in.door_open && prev.door_open) {
    held_reported_ = false;
    out.push_back(Make(DoorEventKind::kDoorClosed, "门已关闭 / door closed"));
  }
  for (auto& e : Tick(now)) out.push_back(std::move(e));
  return out;
}

std::vector<DoorEvent> DoorMonitor::Tick(Clock::time_point now) {
  std::vector<DoorEvent> out;
  if (inputs_.door_open && !held_reported_ && !latched_ && !inputs_.fire_alarm &&
      now - open_since_ >= options_.held_open_limit) {
    held_reported_ = true;
    out.push_back(Make(DoorEventKind::kHeldOpen, "门长时间未关 / door held open too long"));
  }
  return out;
}

std::optional<DoorEvent> DoorMonitor::OnFault(const std::string& detail) {
  if (faulted_) return std::nullopt;
  faulted_ = true;
  return Make(DoorEventKind::kFault, detail);
}

std::optional<DoorEvent> DoorMonitor::OnHealthy() {
  if (!faulted_) return std::nullopt;
  faulted_ = false;
  return Make(DoorEventKind::kFaultCleared, "门控恢复 / door controller reachable again");
}

}  // namespace anju::door
